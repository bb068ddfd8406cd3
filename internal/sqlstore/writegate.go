package sqlstore

import (
	"context"
	"fmt"
	"time"
)

// writeGate lets one writer of this process at a time at an SQLite
// database. SQLite has a single write lock; a connection that finds it taken
// sleeps in its busy handler for 1, 2, 5, 10 … ms before trying again, while
// the holder needs a tenth of a millisecond. Under concurrent writes (every
// refresh rotates a token) most of the time went to those sleeps: sixteen
// clients refreshing at once got less done than one. Writers queue here
// instead and take the lock the moment it is free. The busy handler still
// arbitrates between processes (a CLI command next to the server).
//
// It applies to transactions (InTx) and to single statements run with
// ExecContext outside one; reads never wait for it.
type writeGate chan struct{}

// writeGateTimeout matches the busy timeout of the SQLite connections: a
// writer waits as long as SQLite itself would have.
const writeGateTimeout = 10 * time.Second

func newWriteGate() writeGate { return make(writeGate, 1) }

// acquire waits for the gate; release it with the returned func. A nil gate
// (PostgreSQL) lets everyone through.
func (g writeGate) acquire(ctx context.Context) (func(), error) {
	if g == nil {
		return func() {}, nil
	}
	select {
	case g <- struct{}{}:
		return func() { <-g }, nil
	default:
	}
	t := time.NewTimer(writeGateTimeout)
	defer t.Stop()
	select {
	case g <- struct{}{}:
		return func() { <-g }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		return nil, fmt.Errorf("database is busy: no write slot within %s", writeGateTimeout)
	}
}
