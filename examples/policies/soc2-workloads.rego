# METADATA
# title: Workload admission rules for SOC 2 (an example policy, Rego v1)
# description: >-
#   Pods declare runAsNonRoot, every container has a memory limit, secret
#   volumes state a defaultMode, and Deployments, StatefulSets and DaemonSets
#   carry the data-classification, data-retention and compliance-scope labels.
#   The built-in checks judge the same ideas on effective values.
# custom:
#   check_id: rego.example.soc2_workloads
#   severity: high
#   controls:
#     soc2: [CC6.1, CC6.8]
#   remediation: Fix the fields the messages name.
package compliance.example.workloads

request := input.request

controllers := {"Deployment", "StatefulSet", "DaemonSet"}

data_labels := ["data-classification", "data-retention", "compliance-scope"]

# The pod spec itself must say it runs as a non-root user.
deny contains "the pod does not set securityContext.runAsNonRoot: true" if {
	request.kind.kind == "Pod"
	not request.object.spec.securityContext.runAsNonRoot
}

# Without a memory limit one container can starve its node.
deny contains sprintf("container %v has no memory limit", [c.name]) if {
	request.kind.kind == "Pod"
	some c in request.object.spec.containers
	not c.resources.limits.memory
}

# A secret volume should state its file mode rather than take the default.
deny contains sprintf("secret volume %v states no defaultMode", [v.name]) if {
	request.kind.kind == "Pod"
	some v in request.object.spec.volumes
	v.secret
	not v.secret.defaultMode
}

# Controllers say what data they hold and how long it is kept.
deny contains sprintf("labels missing: %v", [concat(", ", missing)]) if {
	controllers[request.kind.kind]
	missing := [l | some l in data_labels; not request.object.metadata.labels[l]]
	count(missing) > 0
}
