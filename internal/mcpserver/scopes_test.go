package mcpserver_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/mcpserver"
)

func TestScopes(t *testing.T) {
	if got := strings.Join(mcpserver.Scopes(), " "); got != "read:organizations read:users write:users" {
		t.Fatalf("Scopes() = %q", got)
	}
	for tool, want := range map[string]string{"whoami": "read:users", "list_organizations": "read:organizations",
		"list_sessions": "read:users", "revoke_session": "write:users"} {
		if got, ok := mcpserver.ToolScope(tool); !ok || got != want {
			t.Errorf("ToolScope(%s) = %q, %v; want %q", tool, got, ok, want)
		}
	}
	if _, ok := mcpserver.ToolScope("delete_everything"); ok {
		t.Error("an unknown tool has a scope")
	}
}

// TestPeek reads bodies the way the SDK will, so that the edge's scope check
// sees the tool the SDK is going to run.
func TestPeek(t *testing.T) {
	for _, tc := range []struct {
		name   string
		body   string
		ok     bool
		want   []mcpserver.Message
		scopes string // missing for a token with read:users only
	}{
		{"call", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"list_organizations","arguments":{}}}`, true,
			[]mcpserver.Message{{ID: []byte("7"), Method: "tools/call", Tool: "list_organizations"}}, "read:organizations"},
		{"string id, spaces", " \n{\"id\":\"a-1\",\"jsonrpc\":\"2.0\",\"method\":\"tools/call\",\"params\":{\"name\":\"revoke_session\"}}\n", true,
			[]mcpserver.Message{{ID: []byte(`"a-1"`), Method: "tools/call", Tool: "revoke_session"}}, "write:users"},
		{"granted", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami"}}`, true,
			[]mcpserver.Message{{ID: []byte("1"), Method: "tools/call", Tool: "whoami"}}, ""},
		{"unknown tool", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"nope"}}`, true,
			[]mcpserver.Message{{ID: []byte("1"), Method: "tools/call", Tool: "nope"}}, ""},
		{"list", `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, true,
			[]mcpserver.Message{{ID: []byte("2"), Method: "tools/list"}}, ""},
		{"notification", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, true,
			[]mcpserver.Message{{Method: "notifications/initialized"}}, ""},
		{"null id", `{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"list_organizations"}}`, true,
			[]mcpserver.Message{{Method: "tools/call", Tool: "list_organizations"}}, "read:organizations"},
		{"batch", `[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami"}},` +
			`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"revoke_session"}},` +
			`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"list_organizations"}}]`, true,
			[]mcpserver.Message{{ID: []byte("1"), Method: "tools/call", Tool: "whoami"}, {ID: []byte("2"), Method: "tools/call", Tool: "revoke_session"},
				{ID: []byte("3"), Method: "tools/call", Tool: "list_organizations"}}, "read:organizations write:users"},
		// The SDK matches keys exactly: "NAME" is not the tool's name, nor
		// "Method" the method.
		{"other case", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","NAME":"revoke_session"}}`, true,
			[]mcpserver.Message{{ID: []byte("1"), Method: "tools/call", Tool: "whoami"}}, ""},
		{"Method", `{"jsonrpc":"2.0","id":1,"Method":"tools/call","params":{"name":"revoke_session"}}`, true,
			[]mcpserver.Message{{ID: []byte("1")}}, ""},
		{"not JSON", `tools/call revoke_session`, false, nil, ""},
		{"empty", ``, false, nil, ""},
		{"bad batch", `[{"method":"tools/call"},`, false, nil, ""},
		{"number", `42`, false, nil, ""},
		{"method not a string", `{"jsonrpc":"2.0","id":1,"method":7}`, false, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := mcpserver.Peek([]byte(tc.body))
			if ok != tc.ok || len(got) != len(tc.want) {
				t.Fatalf("Peek = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
			for i := range got {
				if string(got[i].ID) != string(tc.want[i].ID) || got[i].Method != tc.want[i].Method || got[i].Tool != tc.want[i].Tool {
					t.Errorf("message %d = {%s %q %q}, want {%s %q %q}", i, got[i].ID, got[i].Method, got[i].Tool,
						tc.want[i].ID, tc.want[i].Method, tc.want[i].Tool)
				}
			}
			if missing := strings.Join(mcpserver.MissingScopes(got, []string{"openid", "read:users"}), " "); missing != tc.scopes {
				t.Errorf("MissingScopes = %q, want %q", missing, tc.scopes)
			}
		})
	}
	all := mcpserver.Scopes()
	msgs, _ := mcpserver.Peek([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"revoke_session"}}`))
	if m := mcpserver.MissingScopes(msgs, all); m != nil || !slices.Equal(all, mcpserver.Scopes()) {
		t.Errorf("with every scope: missing %v", m)
	}
}
