# Azure Container Apps (not App Service): per-app scale rules on queue length with managed
# identity (KEDA azure-queue), scale to zero for worker pools, health probes, Key Vault
# references for secrets, secrets mounted as files for the catalog. README.md says why.
resource "azurerm_container_app_environment" "this" {
  name                           = "${local.name}-env"
  location                       = var.location
  resource_group_name            = var.resource_group_name
  log_analytics_workspace_id     = local.log_analytics_workspace_id
  logs_destination               = "log-analytics"
  infrastructure_subnet_id       = try(var.network.apps_subnet_id, null)
  internal_load_balancer_enabled = try(var.network.internal_load_balancer, null)
  tags                           = local.tags
}

locals {
  orchestrator_name = "${var.prefix}-${var.env}-cloudo-orch"
  public_url        = "https://${local.orchestrator_name}.${azurerm_container_app_environment.this.default_domain}"
  config_dir        = "/etc/cloudo"
  # Operator documents, mounted as files (secret volume: every app secret is a file).
  documents = { for k, v in {
    catalog             = var.schemas
    routes              = var.routing_rules
    notification-routes = var.notification_routes
    schedules           = var.schedules
  } : k => v if v != null }
  # Notification secrets the orchestrator reads, by the variable cloudo takes them from.
  secret_env = {
    opsgenie_api_key     = "CLOUDO_OPSGENIE_API_KEY"
    slack_token          = "CLOUDO_SLACK_TOKEN"
    slack_signing_secret = "CLOUDO_SLACK_SIGNING_SECRET"
    slack_webhook_url    = "CLOUDO_SLACK_WEBHOOK_URL"
    oidc_client_secret   = "CLOUDO_OIDC_CLIENT_SECRET"
  }
  storage_env = {
    CLOUDO_BACKEND                = "azure"
    CLOUDO_AZURE_STORAGE_ACCOUNT  = azurerm_storage_account.this.name
    CLOUDO_AZURE_CREDENTIAL       = "managed"
    CLOUDO_AZURE_PREFIX           = local.azure_prefix
    CLOUDO_LOG_FORMAT             = "json"
  }
}

resource "azurerm_container_app" "orchestrator" {
  name                         = local.orchestrator_name
  container_app_environment_id = azurerm_container_app_environment.this.id
  resource_group_name          = var.resource_group_name
  revision_mode                = "Single"
  tags                         = local.tags

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.orchestrator.id]
  }

  registry {
    server               = var.orchestrator_image.registry_url
    identity             = var.orchestrator_image.registry_username == null ? azurerm_user_assigned_identity.orchestrator.id : null
    username             = var.orchestrator_image.registry_username
    password_secret_name = var.orchestrator_image.registry_username == null ? null : "registry-password"
  }

  dynamic "secret" {
    for_each = merge(
      { admin-key = azurerm_key_vault_secret.admin.versionless_id, ingest-key = azurerm_key_vault_secret.ingest.versionless_id },
      { for p, s in azurerm_key_vault_secret.worker : "worker-key-${p}" => s.versionless_id },
      { for k, id in var.secret_ids : replace(k, "_", "-") => id if id != null },
      var.orchestrator_image.registry_password_secret_id == null ? {} : { registry-password = var.orchestrator_image.registry_password_secret_id },
    )
    content {
      name                = secret.key
      key_vault_secret_id = secret.value
      identity            = azurerm_user_assigned_identity.orchestrator.id
    }
  }

  dynamic "secret" {
    for_each = local.documents
    content {
      name  = secret.key
      value = secret.value
    }
  }

  ingress {
    external_enabled = true
    target_port      = 7071
    transport        = "auto"
    traffic_weight {
      latest_revision = true
      percentage      = 100
    }
    dynamic "ip_security_restriction" {
      for_each = try(var.network.allowed_client_cidrs, [])
      content {
        name             = "allowed-${ip_security_restriction.key}"
        action           = "Allow"
        ip_address_range = ip_security_restriction.value
      }
    }
  }

  template {
    min_replicas = 1
    max_replicas = 3

    volume {
      name         = "config"
      storage_type = "Secret"
    }

    container {
      name   = "cloudo"
      image  = "${var.orchestrator_image.registry_url}/${var.orchestrator_image.image_name}:${var.orchestrator_image.image_tag}"
      cpu    = 0.5
      memory = "1Gi"
      args   = ["serve", "--listen", "0.0.0.0:7071"]

      volume_mounts {
        name = "config"
        path = local.config_dir
      }

      # Settings left null (no Slack channel, key-authenticated trigger) are not set at all.
      dynamic "env" {
        for_each = { for k, v in merge(local.storage_env, {
          AZURE_CLIENT_ID       = azurerm_user_assigned_identity.orchestrator.client_id
          CLOUDO_PUBLIC_URL     = local.public_url
          CLOUDO_WORKER_POOLS   = "none"
          CLOUDO_SLACK_CHANNEL  = var.slack_channel
          CLOUDO_ENTRA_TENANT   = var.trigger_auth == "entra" ? var.entra_app.tenant_id : null
          CLOUDO_ENTRA_AUDIENCE = var.trigger_auth == "entra" ? var.entra_app.identifier_uri : null
          }, { for k, _ in local.documents : {
            catalog             = "CLOUDO_CATALOG"
            routes              = "CLOUDO_ROUTES"
            notification-routes = "CLOUDO_NOTIFY_ROUTES"
            schedules           = "CLOUDO_SCHEDULES"
        }[k] => "${local.config_dir}/${k}" }) : k => v if v != null }
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "env" {
        for_each = merge(
          { CLOUDO_ADMIN_KEY = "admin-key", CLOUDO_INGEST_KEY = "ingest-key" },
          { for p, _ in var.worker_pools : "CLOUDO_WORKER_KEY_${upper(replace(p, "-", "_"))}" => "worker-key-${p}" },
          { for k, id in var.secret_ids : local.secret_env[k] => replace(k, "_", "-") if id != null },
        )
        content {
          name        = env.key
          secret_name = env.value
        }
      }

      liveness_probe {
        transport        = "HTTP"
        port             = 7071
        path             = "/api/healthz"
        interval_seconds = 10
      }

      readiness_probe {
        transport        = "HTTP"
        port             = 7071
        path             = "/api/readyz"
        interval_seconds = 10
      }
    }
  }

  depends_on = [azurerm_role_assignment.orchestrator_secrets, azurerm_role_assignment.orchestrator_tables, azurerm_role_assignment.orchestrator_queues]
}

resource "azurerm_container_app" "worker" {
  for_each                     = var.worker_pools
  name                         = "${var.prefix}-${var.env}-cloudo-w-${each.key}"
  container_app_environment_id = azurerm_container_app_environment.this.id
  resource_group_name          = var.resource_group_name
  revision_mode                = "Single"
  tags                         = local.tags

  identity {
    type = "UserAssigned"
    identity_ids = [
      azurerm_user_assigned_identity.worker[each.key].id,
      azurerm_user_assigned_identity.runbooks[each.key].id,
    ]
  }

  registry {
    server               = var.worker_image.registry_url
    identity             = var.worker_image.registry_username == null ? azurerm_user_assigned_identity.worker[each.key].id : null
    username             = var.worker_image.registry_username
    password_secret_name = var.worker_image.registry_username == null ? null : "registry-password"
  }

  dynamic "secret" {
    for_each = merge(
      { worker-key = azurerm_key_vault_secret.worker[each.key].versionless_id },
      var.runbooks_git.token_secret_id == null ? {} : { git-token = var.runbooks_git.token_secret_id },
      var.worker_image.registry_password_secret_id == null ? {} : { registry-password = var.worker_image.registry_password_secret_id },
    )
    content {
      name                = secret.key
      key_vault_secret_id = secret.value
      identity            = azurerm_user_assigned_identity.worker[each.key].id
    }
  }

  template {
    min_replicas = each.value.min_replicas
    max_replicas = each.value.max_replicas

    # KEDA's azure-queue scaler with the worker's identity (no account key anywhere).
    custom_scale_rule {
      name             = "queue"
      custom_rule_type = "azure-queue"
      identity_id      = azurerm_user_assigned_identity.worker[each.key].id
      metadata = {
        accountName = azurerm_storage_account.this.name
        queueName   = local.pool_queues[each.key]
        queueLength = tostring(each.value.queue_length)
      }
    }

    container {
      name   = "worker"
      image  = "${var.worker_image.registry_url}/${var.worker_image.image_name}:${var.worker_image.image_tag}"
      cpu    = each.value.cpu
      memory = each.value.memory

      dynamic "env" {
        for_each = merge(local.storage_env, {
          AZURE_CLIENT_ID           = azurerm_user_assigned_identity.worker[each.key].client_id
          CLOUDO_WORKER_POOL        = each.key
          # HTTPS, like every other client: the worker's key travels in its requests.
          CLOUDO_ORCHESTRATOR_URL = local.public_url
          CLOUDO_RUNBOOK_CREDENTIAL = "managed"
          CLOUDO_RUNBOOK_CLIENT_ID  = azurerm_user_assigned_identity.runbooks[each.key].client_id
          CLOUDO_RUNBOOKS_GIT       = var.runbooks_git.repo_url
          CLOUDO_RUNBOOKS_REF       = var.runbooks_git.branch
          CLOUDO_RUNBOOKS_PATH      = var.runbooks_git.path
          CLOUDO_SANDBOX            = "process"
          CLOUDO_CONCURRENCY        = tostring(each.value.concurrency)
          CLOUDO_METRICS_LISTEN     = "0.0.0.0:9102"
        })
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "env" {
        for_each = merge(
          { CLOUDO_WORKER_KEY = "worker-key" },
          var.runbooks_git.token_secret_id == null ? {} : { CLOUDO_GIT_TOKEN = "git-token" },
        )
        content {
          name        = env.key
          secret_name = env.value
        }
      }

      liveness_probe {
        transport        = "TCP"
        port             = 9102
        interval_seconds = 15
      }
    }
  }

  depends_on = [azurerm_role_assignment.worker_key, azurerm_role_assignment.worker_queue, azurerm_role_assignment.worker_git_token]
}
