package conf

import (
	"os"
	"testing"
)

// FuzzLoadYAML decodes arbitrary bytes as config.yaml. Oracle: no panic, no
// hang, and whatever decodes cleanly also passes Validate (the line-aware
// checks and Validate agree). Seeds: testdata/fuzz/FuzzLoadYAML and the
// example config. The admin-key policy is left out: it writes files.
func FuzzLoadYAML(f *testing.F) {
	if b, err := os.ReadFile("config.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(specBlock))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := decode(data, "fuzz.yaml")
		if err != nil {
			if c != nil {
				t.Fatalf("decode returned a config and an error: %v", err)
			}
			return
		}
		for _, k := range c.Deployment.Admin.AdminKey {
			if k.Key == "" {
				// Load would generate or drop it; Validate rightly refuses it
				return
			}
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("decoded cleanly but Validate failed: %v\n%s", err, data)
		}
	})
}
