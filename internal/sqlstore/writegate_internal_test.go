package sqlstore

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestWriteGateLetsOneWriterThrough(t *testing.T) {
	g := newWriteGate()
	release, err := g.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		r, err := g.acquire(context.Background())
		if err == nil {
			r()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("a second writer got through while the first held the gate (err %v)", err)
	case <-time.After(50 * time.Millisecond):
	}
	release()
	if err := <-got; err != nil {
		t.Fatalf("second writer after release: %v", err)
	}
}

func TestWriteGateWaiterGivesUpWithItsContext(t *testing.T) {
	g := newWriteGate()
	release, err := g.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := g.acquire(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("waiter with a cancelled context: %v, want context.Canceled", err)
	}
}

func TestWriteGateNilIsOpen(t *testing.T) {
	var g writeGate // PostgreSQL
	for range 3 {
		if _, err := g.acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}
