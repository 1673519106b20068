# METADATA
# title: Images come from our registry (Rego v0)
# description: Every container image is pulled from registry.acme.example.
# custom:
#   check_id: acme.image.registry
#   severity: critical
#   controls: {soc2: [CC8.1], pci-dss: ["6.3.2"]}
#   kinds: [Pod, Deployment]
#   remediation: Push the image to our registry.
package acme.images

deny[msg] {
  c := input.request.object.spec.containers[_]
  not startswith(c.image, "registry.acme.example/")
  msg := sprintf("container %v uses %v", [c.name, c.image])
}
