# PostgreSQL on the Ballast volume pg-data (created from volume.hcl). See docs/nomad.md.
job "postgres" {
  type = "service"

  group "db" {
    count = 1

    volume "data" {
      type            = "csi"
      source          = "pg-data"
      access_mode     = "single-node-writer"
      attachment_mode = "file-system"
    }

    network {
      port "pg" {
        static = 5432
      }
    }

    task "postgres" {
      driver = "docker"

      config {
        image = "postgres:16"
        ports = ["pg"]
      }

      volume_mount {
        volume      = "data"
        destination = "/var/lib/postgresql/data"
      }

      env {
        # one level below the mount: a fresh ext4 has lost+found and initdb wants an empty directory
        PGDATA = "/var/lib/postgresql/data/pgdata"
      }

      template {
        destination = "secrets/pg.env"
        env         = true
        data        = <<-EOT
        POSTGRES_PASSWORD={{ with nomadVar "nomad/jobs/postgres" }}{{ .password }}{{ end }}
        EOT
      }

      # PostgreSQL stops cleanly on SIGTERM (fast shutdown); give it time to checkpoint
      kill_signal  = "SIGTERM"
      kill_timeout = "60s"

      resources {
        cpu    = 500
        memory = 1024
      }
    }
  }
}
