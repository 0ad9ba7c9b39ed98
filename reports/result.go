package reports

import (
	"encoding/json"
	"fmt"
	"os"
)

// writeJSON writes v as indented JSON to path.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// readResult reads a result file written by writeJSON into v and checks
// that its "kind" field is kind.
func readResult(path, kind string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var head struct {
		Kind string `json:"kind"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	if head.Kind != kind {
		return fmt.Errorf("%s: not a %s result (kind %q)", path, kind, head.Kind)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	return nil
}
