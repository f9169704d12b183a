# The Ballast node daemon on every Nomad client, registered as CSI plugin "ballast" (controller and
# node in one task: type monolith). See docs/nomad.md.
#
#   nomad var put nomad/jobs/ballast-csi token="$TOKEN"          # the join token SECRET.CA_SHA256, once
#   nomad job run -var join=10.0.0.1:7400 deploy/nomad/ballast-csi.nomad.hcl
#
# The clients' Docker plugin needs `allow_privileged = true` and `volumes { enabled = true }`.

variable "join" {
  type        = string
  description = "API address (HOST:7400) of a running Ballast member; ignored by nodes that already are members"
}

variable "image" {
  type    = string
  default = "ballast:0.1.0"
}

job "ballast-csi" {
  type = "system"

  group "node" {
    network {
      mode = "host"
    }

    task "ballast" {
      driver = "docker"

      config {
        image        = var.image
        network_mode = "host"
        # mounts, loop devices, FUSE (nbdfuse), mount propagation to the host
        privileged = true
        # TLS on every port (docs/security.md): a node joins with the token, whose fingerprint pins
        # the cluster CA; its key and certificate then live in /var/lib/ballast/tls (renewed there).
        # The CA key stays on the first node (made by hand, docs/nomad.md): this job never sees it.
        args = [
          "node", "start",
          "--data-dir=/var/lib/ballast",
          # the CSI node id is the Ballast node id: the Nomad node's name
          "--node-id=${node.unique.name}",
          "--api-listen=${attr.unique.network.ip-address}:7400",
          "--raft-listen=${attr.unique.network.ip-address}:7410",
          "--replication-listen=${attr.unique.network.ip-address}:7420",
          "--nbd-listen=127.0.0.1:10809",
          "--join=${var.join}",
          # Nomad mounts the plugin directory at csi_plugin.mount_dir and expects csi.sock there
          "--csi-endpoint=unix:///csi/csi.sock",
          # Nomad's staging and per-allocation paths lie under mount_dir; the node refuses any other
          "--csi-path-root=/csi",
        ]

        # the node's data directory stays on the host across restarts and upgrades
        mount {
          type   = "bind"
          source = "/var/lib/ballast"
          target = "/var/lib/ballast"
        }
        mount {
          type   = "bind"
          source = "/dev"
          target = "/dev"
        }
      }

      csi_plugin {
        id        = "ballast"
        type      = "monolith"
        mount_dir = "/csi"
      }

      # The join token from Nomad Variables, into the environment (`ballast node start` reads
      # BALLAST_CLUSTER_TOKEN), never into the job spec.
      template {
        destination = "secrets/ballast.env"
        env         = true
        data        = <<-EOT
        BALLAST_CLUSTER_TOKEN={{ with nomadVar "nomad/jobs/ballast-csi" }}{{ .token }}{{ end }}
        EOT
      }

      # Time for a clean stop (the pool is flushed and closed on SIGTERM).
      kill_timeout = "60s"

      resources {
        cpu    = 500
        memory = 512
      }
    }
  }
}
