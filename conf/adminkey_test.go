package conf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGenerateKey(t *testing.T) {
	a, err := GenerateKey()
	require.NoError(t, err)
	b, err := GenerateKey()
	require.NoError(t, err)
	assert.Len(t, a, 43)
	assert.NotEqual(t, a, b)
	assert.Regexp(t, `^[A-Za-z0-9_-]{43}$`, a)
	assert.NoError(t, checkKey(a))
}

func TestExampleAndShortKeysRefused(t *testing.T) {
	for _, tc := range []struct{ key, want string }{
		{"edd1c9f034335f136f87ad84b625c8f1", "published example keys"},
		{"4054f7cf07e344346cd3f287985e76a2", "published example keys"},
		{"tooShortButSecret", "shorter than 32 characters"},
	} {
		body := "deployment:\n  admin:\n    admin_key:\n      - name: admin\n        key: " + testKey +
			"\n        role: admin\n      - name: viewer\n        key: " + tc.key + "\n        role: viewer\n"
		_, err := loadString(t, body)
		require.Error(t, err)
		assert.Contains(t, err.Error(), `config.yaml:8: deployment.admin.admin_key[1] (name "viewer"): key is `)
		assert.Contains(t, err.Error(), tc.want)
		assert.NotContains(t, err.Error(), tc.key, "the key itself is never printed")
		assert.NoDirExists(t, "data")
	}
}

func TestDuplicateKeysRefused(t *testing.T) {
	body := "deployment:\n  admin:\n    admin_key:\n      - {name: a, key: " + testKey + ", role: admin}\n      - {name: b, key: " + testKey + ", role: viewer}\n"
	_, err := loadString(t, body)
	require.ErrorContains(t, err, `admin_key[1] (name "b"): key is the same as admin_key[0]'s`)
	assert.NotContains(t, err.Error(), testKey)
}

func TestKeyGeneratedStoredReused(t *testing.T) {
	body := "deployment:\n  admin:\n    admin_key:\n      - name: ops\n        key: ''\n        role: admin\n"
	path := writeConf(t, body)
	c, err := Load(path)
	require.NoError(t, err)
	ad := c.Deployment.Admin
	require.Len(t, ad.AdminKey, 1)
	key := ad.AdminKey[0].Key
	assert.Len(t, key, 43)
	assert.Equal(t, "ops", ad.AdminKey[0].Name, "the entry's name is kept")
	assert.Equal(t, "admin", ad.AdminKey[0].Role)
	assert.True(t, ad.KeyGenerated)
	assert.True(t, ad.KeyCreated)
	assert.Equal(t, filepath.Join("data", "admin_key"), ad.KeyFile)

	fi, err := os.Stat(ad.KeyFile)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	di, err := os.Stat("data")
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0), di.Mode().Perm()&0o077, "data dir is 0700")
	b, err := os.ReadFile(ad.KeyFile)
	require.NoError(t, err)
	assert.Equal(t, key+"\n", string(b))
	left, _ := filepath.Glob("data/.admin_key-*")
	assert.Empty(t, left, "no temporary file left behind")

	// second start (or SIGHUP): the same key, not regenerated
	c2, err := Load(path)
	require.NoError(t, err)
	assert.Equal(t, key, c2.Deployment.Admin.AdminKey[0].Key)
	assert.True(t, c2.Deployment.Admin.KeyGenerated)
	assert.False(t, c2.Deployment.Admin.KeyCreated)
}

func TestKeyGeneratedWhenAbsent(t *testing.T) {
	for _, body := range []string{
		"deployment:\n  admin:\n    admin_key_required: true\n",
		"deployment:\n  admin:\n    admin_key:\n",
		"deployment:\n  admin:\n    admin_key: []\n",
		"deployment:\n  admin:\n    admin_key:\n      - name: admin\n        key:\n",
	} {
		c := mustLoad(t, body)
		ad := c.Deployment.Admin
		require.Len(t, ad.AdminKey, 1, body)
		assert.Equal(t, "admin", ad.AdminKey[0].Name)
		assert.Equal(t, "admin", ad.AdminKey[0].Role)
		assert.Len(t, ad.AdminKey[0].Key, 43)
		assert.True(t, ad.KeyGenerated)
	}
}

func TestKeyGeneratedBesideViewer(t *testing.T) {
	body := "deployment:\n  admin:\n    admin_key:\n      - {name: admin, key: '', role: admin}\n      - {name: ro, key: " + testKey + ", role: viewer}\n      - {name: ro2, key: '', role: viewer}\n"
	c := mustLoad(t, body)
	ad := c.Deployment.Admin
	require.Len(t, ad.AdminKey, 2)
	assert.Equal(t, "admin", ad.AdminKey[0].Role)
	assert.Len(t, ad.AdminKey[0].Key, 43)
	assert.Equal(t, AdminKey{"ro", testKey, "viewer"}, ad.AdminKey[1])
	require.Len(t, c.Warnings, 1)
	assert.Contains(t, c.Warnings[0], "admin_key[2] (role viewer) has no key; entry ignored")

	// a configured viewer key alone: nothing generated
	c = mustLoad(t, "deployment:\n  admin:\n    admin_key:\n      - {name: ro, key: "+testKey+", role: viewer}\n")
	assert.False(t, c.Deployment.Admin.KeyGenerated)
	assert.Len(t, c.Deployment.Admin.AdminKey, 1)
}

func TestKeyFileBadPermissions(t *testing.T) {
	path := writeConf(t, "apisix:\n  node_listen: 9080\n")
	require.NoError(t, os.Mkdir("data", 0o700))
	require.NoError(t, os.WriteFile("data/admin_key", []byte(testKey+"\n"), 0o600))
	require.NoError(t, os.Chmod("data/admin_key", 0o644))
	_, err := Load(path)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "admin key file data/admin_key is readable or writable by group or others (mode 0644); run chmod 600")
	assert.NotContains(t, err.Error(), testKey)

	require.NoError(t, os.Chmod("data/admin_key", 0o600))
	c, err := Load(path)
	require.NoError(t, err)
	assert.Equal(t, testKey, c.Deployment.Admin.AdminKey[0].Key, "a valid stored key is reused")
	assert.False(t, c.Deployment.Admin.KeyCreated)
}

func TestKeyFileInvalid(t *testing.T) {
	path := writeConf(t, "")
	require.NoError(t, os.Mkdir("data", 0o700))
	require.NoError(t, os.WriteFile("data/admin_key", []byte("edd1c9f034335f136f87ad84b625c8f1\n"), 0o600))
	_, err := Load(path)
	require.ErrorContains(t, err, "does not hold a valid key")
	assert.ErrorContains(t, err, "delete it to have a new one generated")
	assert.NotContains(t, err.Error(), "edd1c9f0")

	require.NoError(t, os.Remove("data/admin_key"))
	require.NoError(t, os.Symlink("/etc/hostname", "data/admin_key"))
	_, err = Load(path)
	require.ErrorContains(t, err, "not a regular file")
}

func TestKeyNotRequired(t *testing.T) {
	c := mustLoad(t, "deployment:\n  admin:\n    admin_key_required: false\n")
	assert.False(t, c.Deployment.Admin.AdminKeyRequired)
	assert.Empty(t, c.Deployment.Admin.AdminKey)
	assert.False(t, c.Deployment.Admin.KeyGenerated)
	assert.NoDirExists(t, "data")
	require.Len(t, c.Warnings, 1)
	assert.Contains(t, c.Warnings[0], "config.yaml:3: WARNING: deployment.admin.admin_key_required is false")

	// a quoted "false" is a string: APISIX keeps keys required then, so
	// sluice refuses it rather than turn key checking off
	for _, v := range []string{`"false"`, `'false'`, `"FALSE"`} {
		requireErrAt(t, "deployment:\n  admin:\n    admin_key_required: "+v+"\n", 3,
			"deployment.admin.admin_key_required: want an unquoted true or false")
	}
	// an environment variable still works (APISIX ${{VAR}})
	t.Setenv("SLUICE_T_AKR", "false")
	c = mustLoad(t, "deployment:\n  admin:\n    admin_key_required: ${{SLUICE_T_AKR}}\n")
	assert.False(t, c.Deployment.Admin.AdminKeyRequired)
}

func TestNoKeyFileWithoutWritableAdmin(t *testing.T) {
	// standalone (yaml): read-only admin, nothing written
	c := mustLoad(t, "deployment:\n  role_traditional:\n    config_provider: yaml\n")
	assert.Empty(t, c.Deployment.Admin.AdminKey)
	assert.False(t, c.Deployment.Admin.KeyGenerated)
	assert.NoDirExists(t, "data")
	require.Len(t, c.Warnings, 1)
	assert.Contains(t, c.Warnings[0], "the Admin API rejects every request")

	// Admin API off
	c = mustLoad(t, "apisix:\n  enable_admin: false\n")
	assert.Empty(t, c.Deployment.Admin.AdminKey)
	assert.False(t, c.Deployment.Admin.KeyGenerated)
	assert.NoDirExists(t, "data")
	assert.Empty(t, c.Warnings)
}

func TestKeyFileEmbeddedPath(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "store", "nested")
	c := mustLoad(t, "deployment:\n  embedded:\n    path: "+store+"\n")
	assert.Equal(t, filepath.Join(store, "admin_key"), c.Deployment.Admin.KeyFile)
	assert.FileExists(t, c.Deployment.Admin.KeyFile)
	assert.NoDirExists(t, "data")
}

func TestKeyFileConcurrentStarts(t *testing.T) {
	inTemp(t)
	file := filepath.Join("data", "admin_key")
	require.NoError(t, os.Mkdir("data", 0o700))
	const n = 8
	keys := make(chan string, n)
	for range n {
		go func() {
			k, _, err := loadOrCreateKey(file)
			if err != nil {
				k = "error: " + err.Error()
			}
			keys <- k
		}()
	}
	first := <-keys
	assert.False(t, strings.HasPrefix(first, "error"), first)
	for range n - 1 {
		assert.Equal(t, first, <-keys, "every start sees the one stored key")
	}
}
