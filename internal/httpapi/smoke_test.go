package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/apitest"
)

func TestRegisterLoginMe(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		tok := e.User("flow@example.com")
		me := e.Get("/api/v1/users/me", tok.Access).Expect(t, http.StatusOK, "").JSON(t)
		if me["email"] != "flow@example.com" || me["id"] != tok.UserID {
			t.Fatalf("me = %v", me)
		}
	})
}
