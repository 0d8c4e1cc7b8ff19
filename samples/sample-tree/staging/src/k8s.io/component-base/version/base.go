package version

// Fallback version data, used when the build does not set these variables
// with -ldflags "-X ...". The $Format markers are filled in by 'git archive'
// (see .gitattributes: export-subst), so tarball builds still carry a commit.
var (
	gitMajor string // major version, always numeric
	gitMinor string // minor version, numeric possibly followed by "+"

	// semantic version, derived by hack/lib/version.sh from git describe
	gitVersion   = "v0.0.0-master+$Format:%h$"
	gitCommit    = "$Format:%H$" // sha1 from git, output of $(git rev-parse HEAD)
	gitTreeState = ""            // state of git tree, either "clean" or "dirty"

	buildDate = "1970-01-01T00:00:00Z" // build date in ISO8601 format, output of $(date -u +'%Y-%m-%dT%H:%M:%SZ')
)
