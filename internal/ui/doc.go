// Package ui is `driftless ui`: a read-only web view of what Git approved, what people tried
// and what is held under break-glass, served on the loopback interface to the person who runs
// it, with that person's own kubeconfig and RBAC.
//
// It has two parts. The read model (Reader) reads the cluster the way the command line does:
// sources and break-glass sessions through the reconciler's exported readers
// (reconciler.ReadStatus, reconciler.ReadBreakGlassHistory), the ledger through
// ledger.Read, the installed configuration through internal/installation, and a source's
// objects by the driftless.dev/source label every applied object carries. The handlers
// (Server) serve the embedded page and one JSON document per view, which the page polls.
//
// The server is guarded against everyone but the person who started it: it listens on
// 127.0.0.1 only; the URL it prints carries a random one-time token that the first request
// exchanges for an HttpOnly, SameSite=Strict cookie; it refuses requests whose Host is not
// its own address (DNS rebinding) or whose Origin or Sec-Fetch-Site is another site's; it
// answers GET and HEAD only; and every response carries a Content-Security-Policy that lets
// the page load nothing but its own files and talk to nothing but its own origin.
//
// The package must never change the cluster, never serve on a non-loopback address, never
// load anything from another origin (the HTML, CSS and JavaScript are embedded), and never
// write data from the cluster into the page as markup: the page sets text only.
package ui
