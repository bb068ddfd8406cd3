package httpapi

import (
	"net/url"
	"testing"
)

func TestLiteralQuery(t *testing.T) {
	cases := []struct{ raw, key, want string }{
		{"page=%zz", "page", "%zz"},
		{"page=%2", "page", "%2"},
		{"q=50%&page=2", "q", "50%"},
		{"q=50%&page=2", "page", "2"},
		{"q=a%20b%zz", "q", "a b%zz"},
		{"q=a;b&x=1", "q", "a;b"},
		{"%zz=1&y=2", "%zz", "1"},
		{"%zz=1&y=2", "y", "2"},
	}
	for _, c := range cases {
		got := literalQuery(c.raw)
		v, err := url.ParseQuery(got)
		if err != nil {
			t.Fatalf("literalQuery(%q) = %q, still unparsable: %v", c.raw, got, err)
		}
		if v.Get(c.key) != c.want {
			t.Errorf("literalQuery(%q): %s = %q, want %q", c.raw, c.key, v.Get(c.key), c.want)
		}
	}
	// A parsable query is never handed to it, but it must not change one.
	if got := literalQuery("a=%41&b=c+d"); got != "a=%41&b=c+d" {
		t.Errorf("well-formed query changed: %q", got)
	}
}
