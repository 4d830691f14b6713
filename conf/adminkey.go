package conf

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

// keyFileName is the file in the data directory that keeps a generated key.
const keyFileName = "admin_key"

// GenerateKey returns a fresh admin key: 32 bytes from crypto/rand, base64
// URL-safe without padding (43 characters, safe in a header, a query string
// and YAML). It is what "sluice keygen" prints.
func GenerateKey() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("conf: generate admin key: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// applyKeyPolicy replaces empty admin_key entries: with the generated key
// when this mode needs one, else by dropping them (SPEC §3).
func (c *Config) applyKeyPolicy() error {
	ad := &c.Deployment.Admin
	var keys []AdminKey
	slot, slotName := -1, ""
	for i, k := range ad.AdminKey {
		if k.Key != "" {
			keys = append(keys, k)
			continue
		}
		if k.Role == KeyRoleViewer {
			// a generated key is an admin key; never hand one to a viewer slot
			c.warnf("deployment.admin.admin_key[%d] (role viewer) has no key; entry ignored", i)
			continue
		}
		if slot < 0 {
			slot, slotName = len(keys), k.Name
		}
	}
	if len(ad.AdminKey) == 0 {
		slot = 0
	}
	ad.AdminKey = keys

	if !c.Apisix.EnableAdmin || !ad.AdminKeyRequired {
		return nil
	}
	if c.Deployment.ConfigProvider == ProviderYAML {
		// standalone: the Admin API is read-only and nothing is written
		if len(keys) == 0 {
			c.warnf("config_provider is yaml and no admin key is configured (none is generated in standalone mode): the Admin API rejects every request")
		}
		return nil
	}
	if slot < 0 {
		return nil
	}
	file := filepath.Join(c.Deployment.Embedded.Path, keyFileName)
	key, created, err := loadOrCreateKey(file)
	if err != nil {
		return c.errorf("%v", err)
	}
	if slotName == "" {
		slotName = "admin"
	}
	k := AdminKey{Name: slotName, Key: key, Role: KeyRoleAdmin}
	ad.AdminKey = slices.Insert(keys, slot, k)
	ad.KeyGenerated, ad.KeyFile, ad.KeyCreated = true, file, created
	return nil
}

// loadOrCreateKey returns the key kept in file, or generates one and stores
// it there (mode 0600, directory 0700). A file that group or others may read,
// or that does not hold a valid key, is an error: the key must stay secret,
// and silently replacing it would lock out whoever holds it.
func loadOrCreateKey(file string) (key string, created bool, err error) {
	if key, err := readKeyFile(file); err == nil {
		return key, false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", false, err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return "", false, fmt.Errorf("admin key: %w", err)
	}
	key, err = GenerateKey()
	if err != nil {
		return "", false, err
	}
	if err := writeKeyFile(file, key); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// another sluice sharing this data directory won the race
			key, err := readKeyFile(file)
			return key, false, err
		}
		return "", false, fmt.Errorf("admin key: %w", err)
	}
	return key, true, nil
}

func readKeyFile(file string) (string, error) {
	fi, err := os.Lstat(file)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		return "", fmt.Errorf("admin key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("admin key file %s is not a regular file", file)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return "", fmt.Errorf("admin key file %s is readable or writable by group or others (mode %#o); run chmod 600 %s", file, perm, file)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("admin key: %w", err)
	}
	key := strings.TrimSpace(string(b))
	if err := checkKey(key); err != nil {
		return "", fmt.Errorf("admin key file %s does not hold a valid key (%v); delete it to have a new one generated", file, err)
	}
	return key, nil
}

// writeKeyFile stores key in file without ever replacing an existing file:
// it writes a temporary file, syncs it, then hard-links it into place
// (fs.ErrExist if file appeared meanwhile). Where hard links are not
// supported it creates file with O_EXCL instead.
func writeKeyFile(file, key string) error {
	dir := filepath.Dir(file)
	tmp, err := os.CreateTemp(dir, ".admin_key-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.WriteString(key + "\n"); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), file); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		if err := createExcl(file, key); err != nil {
			return err
		}
	}
	syncDir(dir)
	return nil
}

func createExcl(file, key string) error {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(key + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir makes the new directory entry durable; best effort (not every
// platform can sync a directory).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
