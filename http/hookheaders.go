package http

import (
	"fmt"
	"strings"
)

// DefaultHookHeaders are the request headers a webhook job stores (and its
// templates see as webhook.headers.*) unless TriggersConfig.Headers says
// otherwise: what the common git hosts and CI systems send to say what
// happened, and nothing that authenticates. Any other header (a provider's
// token such as X-Gitlab-Token, an API key, a signature) is dropped before
// the job is stored.
var DefaultHookHeaders = []string{
	"Content-Type", "User-Agent",
	"X-GitHub-Event", "X-GitHub-Delivery", "X-GitHub-Hook-ID",
	"X-Gitlab-Event", "X-Gitlab-Event-UUID",
	"X-Gitea-Event", "X-Gitea-Delivery",
	"X-Event-Key", "X-Request-Id", "X-Hook-UUID",
}

// hookCredentialHeaders are never stored, whatever the allowlist says.
var hookCredentialHeaders = map[string]bool{"authorization": true, "proxy_authorization": true, "cookie": true}

// CheckHookHeaders refuses an allowlist naming a header that carries
// credentials, or an empty name.
func CheckHookHeaders(names []string) error {
	for _, n := range names {
		switch h := HookHeaderName(strings.TrimSpace(n)); {
		case h == "":
			return fmt.Errorf("empty header name")
		case hookCredentialHeaders[h]:
			return fmt.Errorf("%s carries credentials and is never stored", n)
		}
	}
	return nil
}

// hookHeaderSet turns an allowlist into webhook.headers names; nil means
// DefaultHookHeaders.
func hookHeaderSet(names []string) map[string]bool {
	if names == nil {
		names = DefaultHookHeaders
	}
	set := make(map[string]bool, len(names))
	for _, n := range names {
		if h := HookHeaderName(strings.TrimSpace(n)); h != "" && !hookCredentialHeaders[h] {
			set[h] = true
		}
	}
	return set
}
