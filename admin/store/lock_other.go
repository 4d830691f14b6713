//go:build !unix

package store

import (
	"fmt"
	"os"
	"path/filepath"
)

// lockDir on systems without flock: create LOCK exclusively. A crash leaves
// the file behind; remove it by hand. (sluice runs on Linux; this keeps the
// package building elsewhere.)
func lockDir(dir string) (release func() error, err error) {
	path := filepath.Join(dir, "LOCK")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if os.IsExist(err) {
			return nil, fmt.Errorf("store: %s is in use by another sluice (or %s was left by a crash)", dir, path)
		}
		return nil, fmt.Errorf("store: lock %s: %w", path, err)
	}
	return func() error {
		err := f.Close()
		if rerr := os.Remove(path); err == nil {
			err = rerr
		}
		return err
	}, nil
}
