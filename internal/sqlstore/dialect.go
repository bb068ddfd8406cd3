package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"

	"github.com/gatehouse-dev/gatehouse/internal/apperr"
)

// SQLite result codes used below (sqlite3.h).
const (
	sqliteBusy             = 5
	sqliteLocked           = 6
	sqliteConstraintUnique = 2067
	sqliteConstraintPK     = 1555
)

// errUnavailable is what every store method returns when the database cannot
// be reached or is saturated; the API answers 503 and the service recovers
// by itself once the database is back.
var errUnavailable = &apperr.Error{
	Kind: apperr.Unavailable, Code: apperr.CodeServiceUnavailable,
	Message: "The database is temporarily unavailable. Please retry shortly.", RetryAfter: 5,
}

// wrap classifies a driver error once: connection problems become
// errUnavailable (503), everything else is wrapped with the operation name
// and becomes a 500 upstream. sql.ErrNoRows stays matchable with errors.Is.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if isUnavailable(err) {
		return errUnavailable.Wrap(fmt.Errorf("%s: %w", op, err))
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "22021" || pgErr.Code == "22P05") {
		// Text PostgreSQL cannot store (a NUL character): the input is at
		// fault. Fields are validated before they get here; this is the net.
		return apperr.Validation(apperr.FieldError{Message: "The input contains characters that cannot be stored"}).Wrap(err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func isUnavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08 connection exception, 57P0x shutdown / cannot connect now,
		// 53300 too many connections.
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P") || pgErr.Code == "53300"
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		code := sqErr.Code() & 0xff
		return code == sqliteBusy || code == sqliteLocked
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connErr) || errors.As(err, &netErr) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, context.DeadlineExceeded) || pgconn.SafeToRetry(err)
}

// isUniqueViolation reports a unique-constraint failure. Callers know which
// unique constraint their statement can break (primary keys are random
// UUIDs), so no constraint names or messages are inspected.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		return sqErr.Code() == sqliteConstraintUnique || sqErr.Code() == sqliteConstraintPK
	}
	return false
}

// isForeignKeyViolation reports a foreign-key failure (a referenced row is gone).
func isForeignKeyViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23503"
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		return sqErr.Code() == 787 // SQLITE_CONSTRAINT_FOREIGNKEY
	}
	return false
}

// likePattern escapes a user search string for LIKE ... ESCAPE '\' so that
// %, _ and \ match literally.
func likePattern(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.ToLower(s)) + "%"
}
