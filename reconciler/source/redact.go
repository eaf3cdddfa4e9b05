package source

import (
	"net/url"
	"strings"
)

// RedactURL returns rawURL without credentials, safe for logs, errors and
// status. HTTP(S) URLs lose their whole userinfo (a username can itself be
// a token); SSH URLs keep the username, which is not a secret.
func RedactURL(rawURL string) string {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		// A local path or scp-like address (git@host:repo), neither of
		// which can carry a password.
		return rawURL
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		// Strip anything that looks like userinfo from an unparsable URL.
		hostEnd := strings.IndexAny(rest, "/?#")
		if hostEnd < 0 {
			hostEnd = len(rest)
		}
		if at := strings.LastIndex(rest[:hostEnd], "@"); at >= 0 {
			rest = rest[at+1:]
		}
		return scheme + "://" + rest
	}
	if u.User == nil {
		return rawURL
	}
	if strings.EqualFold(u.Scheme, "ssh") {
		u.User = url.User(u.User.Username())
	} else {
		u.User = nil
	}
	return u.String()
}

// redactedError hides secrets in an error's message while keeping the
// error chain for errors.Is and errors.As.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redact replaces every secret (and the raw URL, when it differs from its
// redacted form) in err's message.
func redact(err error, rawURL string, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if red := RedactURL(rawURL); red != rawURL {
		msg = strings.ReplaceAll(msg, rawURL, red)
	}
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}
