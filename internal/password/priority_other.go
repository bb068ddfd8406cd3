//go:build !linux

package password

// lowerThreadPriority leaves the priority as it is outside Linux.
func lowerThreadPriority() {}
