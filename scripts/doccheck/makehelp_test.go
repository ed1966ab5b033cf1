package main

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestMakeHelpListsEveryTarget checks that make help, the list the README
// points to, shows every phony target of the Makefile (names with digits,
// like compose-e2e, too), each with its help text and the variables in it
// expanded.
func TestMakeHelpListsEveryTarget(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make on this machine")
	}
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, m := range regexp.MustCompile(`(?m)^\.PHONY:\s*(.+)$`).FindAllStringSubmatch(string(mk), -1) {
		targets = append(targets, strings.Fields(m[1])...)
	}
	if len(targets) < 10 {
		t.Fatalf("found %d phony targets in the Makefile: %q", len(targets), targets)
	}
	cmd := exec.Command("make", "-s", "--no-print-directory", "help")
	cmd.Dir = "../.."
	env, _ := freshEnv(os.Environ())
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make help: %v\n%s", err, out)
	}
	help := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			help[f[0]] = strings.Join(f[1:], " ")
		}
	}
	for _, target := range targets {
		if _, ok := help[target]; !ok {
			t.Errorf("make help does not list %s (give it a \"## help\" comment)", target)
		}
	}
	if strings.Contains(string(out), "$(") || strings.Contains(string(out), "\x1b[") {
		t.Errorf("make help shows an unexpanded variable or, not on a terminal, colour codes:\n%s", out)
	}
}
