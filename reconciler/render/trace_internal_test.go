package render

import "testing"

func TestRenamedFrom(t *testing.T) {
	tests := []struct {
		name, declared string
		want           bool
	}{
		{"prod-web", "web", true},
		{"web-v2", "web", true},
		{"eu-web-v2", "web", true},
		{"web", "web", true},
		{"webhook", "web", false},
		{"cobweb", "web", false},
		{"prodweb", "web", false},
		{"api", "web", false},
		{"web", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/"+tt.declared, func(t *testing.T) {
			if got := renamedFrom(tt.name, tt.declared); got != tt.want {
				t.Errorf("renamedFrom(%q, %q) = %v, want %v", tt.name, tt.declared, got, tt.want)
			}
		})
	}
}
