package mcpserver

import (
	"bytes"
	"encoding/json"
	"slices"
)

// Message is what the HTTP edge needs to know about one JSON-RPC message of
// a request body: its id (to answer a refused request in JSON-RPC), its
// method and, for tools/call, the tool's name.
type Message struct {
	ID     json.RawMessage // nil for notifications and responses
	Method string
	Tool   string // params.name of a tools/call
}

// Peek reads a POST body the way the SDK will: one JSON-RPC message or a
// batch (2025-03-26). Keys are matched exactly, as the SDK's decoder does
// (a "Method" or "NAME" key is not "method" or "name"). ok is false for
// anything that is not JSON-RPC; the SDK answers those itself.
func Peek(body []byte) (msgs []Message, ok bool) {
	body = bytes.TrimSpace(body)
	var raws []json.RawMessage
	switch {
	case len(body) > 0 && body[0] == '[':
		if json.Unmarshal(body, &raws) != nil {
			return nil, false
		}
	case len(body) > 0 && body[0] == '{':
		raws = []json.RawMessage{body}
	default:
		return nil, false
	}
	for _, raw := range raws {
		var fields map[string]json.RawMessage
		if json.Unmarshal(raw, &fields) != nil {
			return nil, false
		}
		var m Message
		if v, has := fields["method"]; has && json.Unmarshal(v, &m.Method) != nil {
			return nil, false
		}
		if v, has := fields["id"]; has && !bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			m.ID = v
		}
		if m.Method == "tools/call" {
			var params map[string]json.RawMessage
			if json.Unmarshal(fields["params"], &params) == nil {
				_ = json.Unmarshal(params["name"], &m.Tool)
			}
		}
		msgs = append(msgs, m)
	}
	return msgs, true
}

// MissingScopes returns the scopes that the tools called in msgs need and
// granted lacks, sorted and unique; nil when nothing is missing. Unknown
// tools need nothing here (the SDK answers them with an error).
func MissingScopes(msgs []Message, granted []string) []string {
	var missing []string
	for _, m := range msgs {
		if m.Method != "tools/call" {
			continue
		}
		if s, ok := toolScopes[m.Tool]; ok && !slices.Contains(granted, s) && !slices.Contains(missing, s) {
			missing = append(missing, s)
		}
	}
	slices.Sort(missing)
	return missing
}
