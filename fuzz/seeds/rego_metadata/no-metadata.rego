package acme.labels

import rego.v1

deny contains "no owner label" if {
	not input.request.object.metadata.labels.owner
}
