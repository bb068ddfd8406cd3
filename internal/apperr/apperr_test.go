package apperr

import (
	"errors"
	"fmt"
	"testing"
)

func TestIsMatchesCopiesOfTheSentinel(t *testing.T) {
	a := New(NotFound, CodeNotFound, "thing not found")
	b := New(NotFound, CodeNotFound, "thing not found") // same text, another sentinel
	for name, err := range map[string]error{
		"itself":       a,
		"with field":   a.WithField("id"),
		"with message": a.WithMessage("thing %d not found", 7),
		"wrapped":      a.Wrap(errors.New("cause")),
		"copy of copy": a.WithMessage("x").WithField("y"),
		"in a chain":   fmt.Errorf("context: %w", a.WithMessage("x")),
	} {
		if !errors.Is(err, a) {
			t.Errorf("%s: errors.Is(err, sentinel) = false", name)
		}
		if errors.Is(err, b) {
			t.Errorf("%s: matches another sentinel with the same text", name)
		}
	}
	if errors.Is(a, a.WithField("x")) {
		t.Error("a sentinel matches a copy of itself used as target")
	}
	c := a.WithMessage("changed")
	if c.Message != "changed" || a.Message != "thing not found" {
		t.Error("WithMessage changed the sentinel")
	}
}

func TestKindOfAndValidation(t *testing.T) {
	if KindOf(errors.New("plain")) != Internal {
		t.Error("plain errors are not Internal")
	}
	if KindOf(fmt.Errorf("x: %w", New(Conflict, "C", "m"))) != Conflict {
		t.Error("KindOf does not unwrap")
	}
	v := Validation(FieldError{Field: "a", Message: "first"}, FieldError{Field: "b", Message: "second"})
	if v.Kind != Invalid || v.Code != CodeValidation || v.Message != "first" || len(v.Fields) != 2 {
		t.Errorf("Validation = %+v", v)
	}
}
