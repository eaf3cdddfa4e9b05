package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Problem is one parse or compile error at a position in a policy file.
type Problem struct {
	// File is the policy file as named in Options.Paths, or
	// "builtin:library/<file>" for the embedded library.
	File string
	// Line is the 1-based line of the problem, 0 when unknown.
	Line int
	// Col is the 1-based column of the problem, 0 when unknown.
	Col int
	// Message describes the problem, prefixed with OPA's error code.
	Message string
}

// String returns "file:line:col: message".
func (p Problem) String() string {
	return fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Col, p.Message)
}

// CompileError reports every parse and compile problem of one load.
type CompileError struct {
	// Problems are sorted by file, line and column.
	Problems []Problem
}

// Error lists every problem as file:line:col: message.
func (e *CompileError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return fmt.Sprintf("compile policies: %s", strings.Join(parts, "; "))
}

// problemsFrom turns OPA errors into Problems, keeping locations.
func problemsFrom(err error) []Problem {
	var astErrs ast.Errors
	if errors.As(err, &astErrs) {
		out := make([]Problem, 0, len(astErrs))
		for _, e := range astErrs {
			out = append(out, problemFrom(e))
		}
		return out
	}
	var astErr *ast.Error
	if errors.As(err, &astErr) {
		return []Problem{problemFrom(astErr)}
	}
	return []Problem{{Message: err.Error()}}
}

func problemFrom(e *ast.Error) Problem {
	p := Problem{Message: e.Code + ": " + e.Message}
	if e.Location != nil {
		p.File, p.Line, p.Col = e.Location.File, e.Location.Row, e.Location.Col
	}
	return p
}

func newCompileError(problems []Problem) *CompileError {
	sort.SliceStable(problems, func(i, j int) bool {
		a, b := problems[i], problems[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	return &CompileError{Problems: problems}
}

// source is one Rego file before parsing.
type source struct {
	name    string
	content string
	test    bool
	builtin bool
}

// isTestFile reports whether a Rego file holds unit tests only.
func isTestFile(name string) bool {
	return strings.HasSuffix(name, "_test.rego")
}

// readPaths collects the .rego files under each path, in lexical order.
// Directories are walked recursively; hidden directories (".git") are skipped.
func readPaths(paths []string) ([]source, error) {
	var out []source
	seen := map[string]bool{}
	for _, root := range paths {
		info, err := os.Stat(root)
		if err != nil {
			return nil, fmt.Errorf("read policy path %s: %w", root, err)
		}
		if !info.IsDir() {
			if filepath.Ext(root) != ".rego" {
				return nil, fmt.Errorf("read policy path %s: not a .rego file or a directory", root)
			}
			src, err := readSource(root)
			if err != nil {
				return nil, err
			}
			if !seen[src.name] {
				seen[src.name] = true
				out = append(out, src)
			}
			continue
		}
		err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return fmt.Errorf("walk policy path %s: %w", path, err)
			}
			if d.IsDir() {
				if path != root && strings.HasPrefix(d.Name(), ".") {
					return filepath.SkipDir
				}
				return nil
			}
			if filepath.Ext(path) != ".rego" || seen[path] {
				return nil
			}
			src, err := readSource(path)
			if err != nil {
				return err
			}
			seen[path] = true
			out = append(out, src)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func readSource(path string) (source, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return source{}, fmt.Errorf("read policy file %s: %w", path, err)
	}
	return source{name: path, content: string(b), test: isTestFile(path)}, nil
}

// parseSources parses every source as Rego v1 and collects all problems,
// so one load reports every broken file at once.
func parseSources(srcs []source) (map[string]*ast.Module, error) {
	modules := make(map[string]*ast.Module, len(srcs))
	var problems []Problem
	for _, src := range srcs {
		m, err := ast.ParseModuleWithOpts(src.name, src.content, ast.ParserOptions{
			RegoVersion:       ast.RegoV1,
			ProcessAnnotation: true,
		})
		if err != nil {
			problems = append(problems, problemsFrom(err)...)
			continue
		}
		if !src.builtin && reservedPackage(m.Package.Path) {
			loc := m.Package.Location
			p := Problem{File: src.name, Message: fmt.Sprintf("rego_compile_error: package %s is reserved for Driftless", strings.TrimPrefix(m.Package.Path.String(), "data."))}
			if loc != nil {
				p.Line, p.Col = loc.Row, loc.Col
			}
			problems = append(problems, p)
			continue
		}
		modules[src.name] = m
	}
	if len(problems) > 0 {
		return nil, newCompileError(problems)
	}
	return modules, nil
}

// reservedPackage reports whether a package path lies under data.driftless.
func reservedPackage(path ast.Ref) bool {
	return len(path) >= 2 && path[1].Equal(ast.StringTerm("driftless"))
}

// newCompiler returns a compiler with Driftless' restrictions: Rego v1 and the sandbox's
// built-ins (see capabilities) plus extra.
func newCompiler(extra ...*ast.Builtin) *ast.Compiler {
	return ast.NewCompiler().
		WithDefaultRegoVersion(ast.RegoV1).
		WithCapabilities(capabilities(extra...))
}

// compileModules compiles modules, knowing the extra builtins, and reports
// problems as a *CompileError. A call of a built-in the sandbox refuses is
// reported as such, at its file:line:col.
func compileModules(modules map[string]*ast.Module, builtins ...*ast.Builtin) (*ast.Compiler, error) {
	if problems := refusedCalls(modules); len(problems) > 0 {
		return nil, newCompileError(problems)
	}
	c := newCompiler(builtins...)
	c.Compile(modules)
	if c.Failed() {
		return nil, newCompileError(problemsFrom(c.Errors))
	}
	return c, nil
}
