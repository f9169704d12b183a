# A Ballast volume for Nomad: nomad volume create deploy/nomad/volume.hcl
# Parameters are the StorageClass parameters of docs/kubernetes.md: repl, minInSync, spreadBy,
# fsType (any other key is refused).
id        = "pg-data"
name      = "pg-data"
type      = "csi"
plugin_id = "ballast"

capacity_min = "10GiB"
capacity_max = "20GiB"

capability {
  access_mode     = "single-node-writer"
  attachment_mode = "file-system"
}

mount_options {
  fs_type = "ext4"
}

parameters {
  repl = "3"
}
