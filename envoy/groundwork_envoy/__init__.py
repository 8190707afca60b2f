"""One description of the mesh (mesh.yaml) rendered into every Envoy config,
edge and sidecars, for the local and Kubernetes profiles, from one set of templates."""
