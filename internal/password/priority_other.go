//go:build !linux

package password

import "errors"

func lowerThreadPriority() {}

func threadNice() (int, error) { return 0, errors.New("thread priorities are only changed on Linux") }
