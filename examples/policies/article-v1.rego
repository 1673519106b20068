# METADATA
# title: The seed article's SOC 2 admission policy (Rego v1)
# description: >-
#   Pods run as non-root and have memory limits, secret volumes set a
#   defaultMode, and Deployments, StatefulSets and DaemonSets carry the
#   data-classification, data-retention and compliance-scope labels.
# custom:
#   check_id: rego.article.soc2_admission
#   severity: high
#   controls:
#     soc2: [CC6.1, CC6.8]
#   remediation: Fix the fields the messages name.
package kubernetes.admission

# Deny pods without required security context
deny contains msg if {
  input.request.kind.kind == "Pod"
  not input.request.object.spec.securityContext.runAsNonRoot
  msg := "SOC 2 Requirement: Pods must run as non-root user"
}

# Require resource limits for all containers
deny contains msg if {
  input.request.kind.kind == "Pod"
  container := input.request.object.spec.containers[_]
  not container.resources.limits.memory
  msg := sprintf("SOC 2 Requirement: Container %v must have memory limits", [container.name])
}

# Ensure sensitive data uses proper storage
deny contains msg if {
  input.request.kind.kind == "Pod"
  volume := input.request.object.spec.volumes[_]
  volume.secret
  not volume.secret.defaultMode
  msg := "SOC 2 Requirement: Secrets must have restricted file permissions"
}

# Data classification enforcement
required_labels := ["data-classification", "data-retention", "compliance-scope"]

deny contains msg if {
  input.request.kind.kind in ["Deployment", "StatefulSet", "DaemonSet"]
  missing_labels := [label | label := required_labels[_]; not input.request.object.metadata.labels[label]]
  count(missing_labels) > 0
  msg := sprintf("Missing required compliance labels: %v", [missing_labels])
}
