# METADATA
# title: Every object has a team
# custom:
#   severity: low
#   kinds: ["*"]
package acme.team

deny contains msg if {
	not input.request.object.metadata.annotations["acme.example/team"]
	msg := "no team annotation"
}
