package workspace

// WebhookInputKeys are the input keys a webhook job gets from its request,
// in the upstream's shape: body (the parsed JSON body, null when there is
// none), headers, method and query. They are set by the server after the
// input is checked: a task need not declare them, a declared field of the
// same name is not checked (in a job started by hand either: its value is
// kept as given), and neither the body nor the trigger's input defaults
// can replace them.
var WebhookInputKeys = []string{"body", "headers", "method", "query"}

// IsWebhookInputKey reports whether k is one of WebhookInputKeys.
func IsWebhookInputKey(k string) bool {
	for _, w := range WebhookInputKeys {
		if k == w {
			return true
		}
	}
	return false
}

// WithoutWebhookInputKeys is the schema without fields named like
// WebhookInputKeys (what a webhook job's input is checked against).
func (s Schema) WithoutWebhookInputKeys() Schema {
	out := make(Schema, 0, len(s))
	for _, f := range s {
		if !IsWebhookInputKey(f.Name) {
			out = append(out, f)
		}
	}
	return out
}
