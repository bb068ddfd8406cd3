package oauth

import (
	"strings"
	"testing"
)

// Issue 5: http redirect URIs only on http://127.0.0.1, http://[::1] and
// http://localhost, written so; any port on the two IP literals (RFC 8252
// §7.3). Other loopback addresses and spellings are not allowed.
func TestRedirectURILoopbackHostsAreExactlyTheThreeOfTheIssue(t *testing.T) {
	for _, u := range []string{
		"http://127.0.0.1/cb", "http://127.0.0.1:51234/cb", "http://[::1]/cb", "http://[::1]:8080/cb",
		"http://localhost/cb", "http://localhost:3000/cb",
	} {
		if why := ValidateRedirectURI(u); why != "" {
			t.Errorf("ValidateRedirectURI(%q) refused: %s", u, why)
		}
	}
	for _, u := range []string{
		"http://127.0.0.2/cb", "http://127.255.255.254:8080/cb", "http://127.1/cb",
		"http://[::ffff:127.0.0.1]/cb", "http://[::ffff:7f00:1]:80/cb", "http://[0:0:0:0:0:0:0:1]/cb",
		"http://[::1%25lo]:8080/cb", "http://LOCALHOST/cb", "http://localhost./cb",
	} {
		if why := ValidateRedirectURI(u); !strings.Contains(why, "https") {
			t.Errorf("ValidateRedirectURI(%q) = %q, want a refusal asking for https", u, why)
		}
	}
	if why := ValidateRedirectURI("https://app.example.com/\xff\xfe"); why == "" {
		t.Error("a redirect URI that is not UTF-8 was accepted")
	}

	// A URI stored under the old rule still matches itself exactly, but its
	// port may not vary: only the two literals get RFC 8252's exception.
	registered := []string{"http://127.0.0.2:8080/cb", "http://[::ffff:127.0.0.1]:8080/cb", "http://[::1]:8080/cb"}
	for _, tc := range []struct {
		requested string
		want      bool
	}{
		{"http://127.0.0.2:8080/cb", true},
		{"http://127.0.0.2:9090/cb", false},
		{"http://[::ffff:127.0.0.1]:9090/cb", false},
		{"http://[::1]:9090/cb", true},
		{"http://[0:0:0:0:0:0:0:1]:8080/cb", false},
	} {
		if got := MatchRedirectURI(registered, tc.requested); got != tc.want {
			t.Errorf("MatchRedirectURI(%q) = %v, want %v", tc.requested, got, tc.want)
		}
	}
}
