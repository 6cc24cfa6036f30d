# Two pools, one acting on AKS clusters: its runbooks get the Cluster User role and
# "Azure Kubernetes Service RBAC Writer" on two namespaces of one cluster, nothing else.
provider "azurerm" {
  features {}
  storage_use_azuread = true
}

module "cloudo" {
  source              = "../.."
  prefix              = "pay"
  env                 = "prod"
  location            = "westeurope"
  resource_group_name = "rg-pay-cloudo"

  orchestrator_image = {
    image_name   = "cloudo-orchestrator"
    image_tag    = "0.1.0"
    registry_url = "myregistry.azurecr.io"
  }
  worker_image = {
    image_name   = "cloudo-worker"
    image_tag    = "0.1.0"
    registry_url = "myregistry.azurecr.io"
  }
  container_registry_id = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-acr/providers/Microsoft.ContainerRegistry/registries/myregistry"

  worker_pools = {
    default = {}
    aks     = { min_replicas = 1, max_replicas = 10, concurrency = 8 }
  }
  schemas = file("${path.module}/schemas.json")
  runbooks_git = {
    repo_url        = "https://github.com/example/runbooks.git"
    path            = "src/runbooks"
    token_secret_id = "https://pay-kv.vault.azure.net/secrets/runbooks-git-token"
  }
  key_vault = { id = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-pay-cloudo/providers/Microsoft.KeyVault/vaults/pay-kv" }
  secret_ids = {
    opsgenie_api_key = "https://pay-kv.vault.azure.net/secrets/opsgenie-api-key"
    slack_token      = "https://pay-kv.vault.azure.net/secrets/slack-token"
  }
  slack_channel = "#payments-oncall"

  aks_integration = {
    weu = {
      cluster_id = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/aks-pay-weu"
      namespaces = ["payments", "checkout"]
      pools      = ["aks"]
    }
  }

  trigger_auth     = "key"
  ops_alert_emails = ["payments-oncall@example.com"]
}
