package oauth

import (
	"fmt"
	"testing"
	"time"
)

func TestVerifiedCache(t *testing.T) {
	c := newVerifiedCache()
	c.max = 3
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	claims := func(i int) AccessClaims { var a AccessClaims; a.ID = fmt.Sprint(i); return a }
	c.put("t1", claims(1), now.Add(time.Minute))
	if got, ok := c.get("t1", now); !ok || got.ID != "1" {
		t.Fatalf("fresh entry: %v %v", got.ID, ok)
	}
	if _, ok := c.get("t1", now.Add(time.Minute)); ok {
		t.Fatal("an entry outlived its deadline")
	}
	if _, ok := c.get("unknown", now); ok {
		t.Fatal("hit for a token never put")
	}
	// Filling a generation keeps the previous one readable, then drops it.
	for i := 2; i <= 7; i++ {
		c.put(fmt.Sprintf("t%d", i), claims(i), now.Add(time.Minute))
	}
	if len(c.cur)+len(c.old) > 2*c.max {
		t.Fatalf("%d entries, bound %d", len(c.cur)+len(c.old), 2*c.max)
	}
	if _, ok := c.get("t7", now); !ok {
		t.Fatal("the newest entry is gone")
	}
	if _, ok := c.get("t1", now); ok {
		t.Fatal("the oldest entry survived two generations")
	}
}
