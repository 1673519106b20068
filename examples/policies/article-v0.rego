# SOC 2 compliance policy for Kubernetes
package kubernetes.admission

# Deny pods without required security context
deny[msg] {
  input.request.kind.kind == "Pod"
  not input.request.object.spec.securityContext.runAsNonRoot
  msg := "SOC 2 Requirement: Pods must run as non-root user"
}

# Require resource limits for all containers
deny[msg] {
  input.request.kind.kind == "Pod"
  container := input.request.object.spec.containers[_]
  not container.resources.limits.memory
  msg := sprintf("SOC 2 Requirement: Container %v must have memory limits", [container.name])
}

# Ensure sensitive data uses proper storage
deny[msg] {
  input.request.kind.kind == "Pod"
  volume := input.request.object.spec.volumes[_]
  volume.secret
  not volume.secret.defaultMode
  msg := "SOC 2 Requirement: Secrets must have restricted file permissions"
}

# Data classification enforcement
required_labels := ["data-classification", "data-retention", "compliance-scope"]

deny[msg] {
  input.request.kind.kind in ["Deployment", "StatefulSet", "DaemonSet"]
  missing_labels := [label | label := required_labels[_]; not input.request.object.metadata.labels[label]]
  count(missing_labels) > 0
  msg := sprintf("Missing required compliance labels: %v", [missing_labels])
}
