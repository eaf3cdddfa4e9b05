// Package render turns a directory of a checked-out config repository into
// the Kubernetes objects it declares.
//
// [Render] and [RenderWithOrigins] read one path inside a repository root.
// When the path holds a kustomization (kustomization.yaml,
// kustomization.yml or Kustomization), it is built in-process with
// kustomize's krusty package; otherwise every *.yaml and *.yml file under
// the path is read as multi-document YAML. Either way the result is a list
// of objects in a deterministic order, each with an [Origin] saying which
// file (or kustomization) it came from and, from [RenderWithOrigins], which
// file and line declare it (a kustomized object is traced to its resource
// file through the same walk that checks the kustomization's references),
// for `driftless check` and for error messages.
//
// Rendering is confined to the repository root: a path, a symlink or a
// kustomization reference that leads outside it is refused
// ([ErrOutsideRoot]), and so is any remote reference (a remote base, a git
// URL or an http(s) resource, [ErrRemoteReference]), so rendering never
// touches the network, never runs git and never runs plugins. Kustomize
// plugins and Helm charts are off.
//
// [RenderWithInputs] also records every path the render read, listed or
// only looked for ([Inputs]), so that a caller that can tell whether they
// changed skips rendering again; [Rendered.Update] brings the render of a
// kustomization that only lists resource files up to date by building only
// the changed files, when their objects keep their ids, and declines
// otherwise.
//
// An empty render (zero objects) is not an error here: the caller decides
// what it means, and the reconciler must never take it as "prune
// everything".
//
// This package only reads files. It knows nothing of Git, of the cluster or
// of policy.
package render
