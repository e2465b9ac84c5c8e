package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The container image cannot be built here (no Docker engine, and a daemonless builder
// cannot pull the base images without internet), so these tests read the Dockerfile
// and docker-compose.yml for the rules that matter. .ci/run also runs
// `docker-compose config -q`.

// instruction is one Dockerfile instruction: its keyword, its flags (--from=build) and
// its other arguments.
type instruction struct {
	cmd   string
	flags map[string]string
	args  []string
	raw   string
}

// stage is a FROM and what follows it.
type stage struct {
	name, image string
	body        []instruction
}

// parseDockerfile reads the instructions of the Dockerfile at path, stage by stage:
// continuation lines joined, comments and parser directives dropped.
func parseDockerfile(t *testing.T, path string) []stage {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	var cur strings.Builder
	for _, l := range strings.Split(string(raw), "\n") {
		trimmed := strings.TrimSpace(l)
		if strings.HasPrefix(trimmed, "#") || trimmed == "" && cur.Len() == 0 {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		lines = append(lines, cur.String())
		cur.Reset()
	}
	var stages []stage
	for _, l := range lines {
		fields := strings.Fields(l)
		in := instruction{cmd: strings.ToUpper(fields[0]), flags: map[string]string{}, raw: l}
		for _, f := range fields[1:] {
			if k, v, ok := strings.Cut(strings.TrimPrefix(f, "--"), "="); strings.HasPrefix(f, "--") && ok && len(in.args) == 0 {
				in.flags[k] = v
				continue
			}
			in.args = append(in.args, f)
		}
		if in.cmd == "FROM" {
			s := stage{image: in.args[0]}
			if len(in.args) == 3 && strings.EqualFold(in.args[1], "AS") {
				s.name = in.args[2]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			t.Fatalf("Dockerfile: %q before any FROM", l)
		}
		stages[len(stages)-1].body = append(stages[len(stages)-1].body, in)
	}
	return stages
}

// goModLine returns the first line of go.mod starting with prefix.
func goModLine(t *testing.T, prefix string) string {
	t.Helper()
	raw, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, prefix) {
			return l
		}
	}
	t.Fatalf("go.mod has no line starting %q", prefix)
	return ""
}

// TestDockerfile: a cgo build on the Go of go.mod, onto distroless base (glibc) as the
// non-root user, with /data created and owned by that user before VOLUME declares it:
// otherwise Docker makes the volume root-owned and the worker cannot create mfad.db.
func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t, "../../Dockerfile")
	if len(stages) != 2 {
		t.Fatalf("%d stages, want a build and a runtime stage", len(stages))
	}
	build, final := stages[0], stages[1]

	goVersion := strings.Fields(goModLine(t, "go "))[1] // 1.26.8
	minor := strings.Join(strings.Split(goVersion, ".")[:2], ".")
	if !strings.HasPrefix(build.image, "golang:"+minor) {
		t.Errorf("build stage FROM %s, want golang:%s… (go.mod says go %s)", build.image, minor, goVersion)
	}
	var built, madeData bool
	var dataSrc string
	for _, in := range build.body {
		if in.cmd == "RUN" && regexp.MustCompile(`\bCGO_ENABLED=1 go build\b.* -o /out/mfad \./cmd/mfad$`).MatchString(in.raw) {
			built = true
		}
		if in.cmd == "RUN" && strings.Contains(in.raw, "mkdir") {
			for _, a := range in.args {
				if strings.HasPrefix(a, "/") {
					dataSrc, madeData = a, true
				}
			}
		}
	}
	if !built {
		t.Error("the build stage has no RUN CGO_ENABLED=1 go build … -o /out/mfad ./cmd/mfad (SQLite needs cgo)")
	}
	if !madeData {
		t.Error("the build stage makes no data directory for the runtime stage (distroless has no shell to mkdir with)")
	}

	if final.image != "gcr.io/distroless/base-debian12:nonroot" {
		t.Errorf("runtime FROM %s, want gcr.io/distroless/base-debian12:nonroot (glibc for cgo, a non-root user)", final.image)
	}
	nonroot := func(owner string) bool {
		user, group, _ := strings.Cut(owner, ":")
		return (user == "65532" || user == "nonroot") && (group == "" || group == "65532" || group == "nonroot")
	}
	volume, owned, binary := -1, -1, false
	var user string
	env := map[string]string{}
	for i, in := range final.body {
		switch in.cmd {
		case "COPY":
			dest := in.args[len(in.args)-1]
			if in.flags["from"] == build.name && slices.Contains(in.args[:len(in.args)-1], "/out/mfad") {
				binary = true
			}
			if dest == "/data" || dest == "/data/" {
				if in.flags["from"] != build.name || !slices.Contains(in.args, dataSrc) || !nonroot(in.flags["chown"]) {
					t.Errorf("%q: want COPY --from=%s --chown=65532:65532 %s /data", in.raw, build.name, dataSrc)
				}
				owned = i
			}
		case "VOLUME":
			if strings.Contains(in.raw, `"/data"`) || slices.Contains(in.args, "/data") {
				volume = i
			}
		case "USER":
			user = in.args[0]
		case "ENV":
			for _, kv := range in.args {
				if k, v, ok := strings.Cut(kv, "="); ok {
					env[k] = v
				}
			}
		}
	}
	switch {
	case volume < 0:
		t.Error("no VOLUME /data")
	case owned < 0:
		t.Error("/data is not created owned by nonroot (65532) in the image: Docker makes the volume root-owned")
	case owned > volume:
		t.Error("/data is made after VOLUME declares it: changes to a volume after VOLUME are discarded")
	}
	if !nonroot(user) {
		t.Errorf("the image runs as USER %q, want nonroot (65532)", user)
	}
	if !binary {
		t.Error("the runtime stage does not copy /out/mfad from the build stage")
	}
	if env["MFAD_DATA_DIR"] != "/data" {
		t.Errorf("MFAD_DATA_DIR=%q, want /data", env["MFAD_DATA_DIR"])
	}
}

// dependsOn is a service's depends_on: service → condition, empty for the short list
// form, which waits for nothing but the start.
type dependsOn map[string]string

func (d *dependsOn) UnmarshalYAML(n *yaml.Node) error {
	*d = dependsOn{}
	if n.Kind == yaml.SequenceNode {
		var names []string
		if err := n.Decode(&names); err != nil {
			return err
		}
		for _, s := range names {
			(*d)[s] = ""
		}
		return nil
	}
	var long map[string]struct {
		Condition string `yaml:"condition"`
	}
	if err := n.Decode(&long); err != nil {
		return err
	}
	for s, c := range long {
		(*d)[s] = c.Condition
	}
	return nil
}

// TestComposeFile: NATS is the server release mfad is built and tested against, the
// mfad services start only once NATS is healthy, and there is no obsolete version key.
func TestComposeFile(t *testing.T) {
	raw, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Version  *string `yaml:"version"`
		Services map[string]struct {
			Image       string         `yaml:"image"`
			Command     []string       `yaml:"command"`
			Healthcheck map[string]any `yaml:"healthcheck"`
			DependsOn   dependsOn      `yaml:"depends_on"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	if compose.Version != nil {
		t.Errorf("docker-compose.yml has the obsolete version key (%q)", *compose.Version)
	}
	natsVersion := strings.TrimPrefix(strings.Fields(goModLine(t, "github.com/nats-io/nats-server/v2 "))[1], "v")
	var nats, mfad []string
	for name, s := range compose.Services {
		switch {
		case strings.HasPrefix(s.Image, "nats:"):
			nats = append(nats, name)
			if tag := strings.TrimPrefix(s.Image, "nats:"); tag != natsVersion && !strings.HasPrefix(tag, natsVersion+"-") {
				t.Errorf("%s runs %s; go.mod has nats-server v%s", name, s.Image, natsVersion)
			}
			if len(s.Healthcheck) == 0 || s.Healthcheck["test"] == nil {
				t.Errorf("%s has no health check to gate on", name)
			}
		case slices.Contains(s.Command, "serve"):
			mfad = append(mfad, name)
		}
	}
	if len(nats) == 0 || len(mfad) == 0 {
		t.Fatalf("found NATS services %v and mfad services %v", nats, mfad)
	}
	for _, name := range mfad {
		deps := compose.Services[name].DependsOn
		for _, n := range nats {
			if deps[n] != "service_healthy" {
				t.Errorf("%s does not wait for %s to be healthy (depends_on condition %q)", name, n, deps[n])
			}
		}
	}
}
