package main

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// adminOrgSlugs lists the slugs of every organization through the admin API.
func (in *instance) adminOrgSlugs(access string) []string {
	in.t.Helper()
	r := in.do("GET", "/api/v1/admin/organizations?limit=100", access, nil).want(in.t, http.StatusOK, "admin organizations")
	list, _ := r.body["data"].([]any)
	var slugs []string
	for _, o := range list {
		slugs = append(slugs, o.(map[string]any)["slug"].(string))
	}
	slices.Sort(slugs)
	return slugs
}

// `gatehouse serve` with DEMO_MODE=true loads the demo data when it creates
// the first superuser, and only then: a restart with the superuser in place
// seeds nothing, not even what was deleted meanwhile.
func TestServeDemoModeSeedsOnFirstStart(t *testing.T) {
	t.Parallel()
	env := smokeEnv(t)
	env["DEMO_MODE"] = "true"
	env["FIRST_SUPERUSER_EMAIL"] = "root@example.com"
	env["FIRST_SUPERUSER_PASSWORD"] = smokePassword

	in := start(t, env)
	admin, _ := in.login("root@example.com", smokePassword)
	want := []string{"acme-corp", "globex", "initech", "massive-dynamic", "soylent", "umbrella"}
	if got := in.adminOrgSlugs(admin.access); !slices.Equal(got, want) {
		t.Fatalf("organizations after the first start: %v, want %v", got, want)
	}
	users := in.do("GET", "/api/v1/admin/users?limit=1", admin.access, nil).want(t, http.StatusOK, "admin users")
	if total := users.body["pagination"].(map[string]any)["total"]; total != float64(34) {
		t.Errorf("%v users, want 33 demo users and the superuser", total)
	}
	demoUser, _ := in.login("demo@example.com", "DemoPass1234!")
	mine := in.do("GET", "/api/v1/organizations/me", demoUser.access, nil).want(t, http.StatusOK, "organizations/me")
	if !strings.Contains(mine.raw, `"name":"Acme Corp"`) {
		t.Errorf("demo@example.com's organizations: %s", mine.raw)
	}
	in.login("leo@massive.com", "Demo123!")
	if !strings.Contains(in.logs.String(), "loaded the demo data") {
		t.Errorf("no log line about the demo data:\n%s", in.logs.String())
	}

	// Delete one organization, then restart: the superuser exists, so
	// nothing is seeded.
	var soylent string
	r := in.do("GET", "/api/v1/admin/organizations?search=soylent", admin.access, nil).want(t, http.StatusOK, "search soylent")
	if list, _ := r.body["data"].([]any); len(list) == 1 {
		soylent, _ = list[0].(map[string]any)["id"].(string)
	}
	if soylent == "" {
		t.Fatalf("soylent not found: %s", r.raw)
	}
	in.do("DELETE", "/api/v1/admin/organizations/"+soylent, admin.access, nil).want(t, http.StatusOK, "delete soylent")
	in.stop()

	again := start(t, env)
	admin, _ = again.login("root@example.com", smokePassword)
	want = slices.DeleteFunc(want, func(s string) bool { return s == "soylent" })
	if got := again.adminOrgSlugs(admin.access); !slices.Equal(got, want) {
		t.Errorf("organizations after a restart: %v, want %v (no seeding once the superuser exists)", got, want)
	}
	if strings.Contains(again.logs.String(), "loaded the demo data") {
		t.Error("the restart loaded the demo data again")
	}
	again.stop()
}
