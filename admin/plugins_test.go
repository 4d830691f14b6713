package admin

// The Admin API validates plugin configurations by compiling them: the
// tests need the plugins registered, as cmd/sluice has them.
import _ "github.com/sluice-gw/sluice/plugin/all"
