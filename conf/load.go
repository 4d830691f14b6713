package conf

import (
	"fmt"
	"os"
)

// Load reads the config.yaml at path ("" = built-in defaults, no file),
// applies APISIX's defaults, checks every value and runs the admin-key
// policy of SPEC §3:
//
//   - an unknown key inside apisix, deployment, nginx_config or plugin_attr,
//     an unknown top-level key, or a value of the wrong type or out of range
//     is an error naming the key path and line ("conf: FILE:LINE: …");
//     APISIX keys and sections sluice does not implement are warnings in
//     Config.Warnings;
//   - APISIX's published example keys and keys shorter than 32 characters
//     are errors that name the admin_key entry, never the key;
//   - when the Admin API is on, config_provider is not yaml,
//     admin_key_required is true and there is no admin_key entry or an admin
//     entry with an empty key, Load reuses the key kept in
//     <deployment.embedded.path>/admin_key or generates and stores one (mode
//     0600, the directory 0700), and sets Admin.KeyGenerated.
//
// Errors are *Error values, several joined with errors.Join. Load touches
// the file system only for path and the admin_key file; it may be called
// again on SIGHUP and reuses the stored key.
func Load(path string) (*Config, error) {
	c, err := Parse(path)
	if err != nil {
		return nil, err
	}
	if err := c.applyKeyPolicy(); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Parse is Load without the admin-key policy, for "sluice validate": it
// reads and checks path ("" = defaults) but never reads or writes the data
// directory, so Admin.AdminKey may still hold entries with an empty key
// (Load would generate the key). Errors are as Load's.
func Parse(path string) (*Config, error) {
	if path == "" {
		return Default(), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("conf: %w", err)
	}
	return decode(data, path)
}

// errorf makes a line-less *Error for c's file.
func (c *Config) errorf(format string, args ...any) error {
	return &Error{File: c.Path, Msg: fmt.Sprintf(format, args...)}
}

// warnf adds a line-less warning.
func (c *Config) warnf(format string, args ...any) {
	c.Warnings = append(c.Warnings, c.errorf(format, args...).Error())
}
