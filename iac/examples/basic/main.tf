# The smallest useful install: one pool, public endpoints with Entra ID authentication,
# the action group calling the trigger with an Entra token.
provider "azurerm" {
  features {}
  storage_use_azuread = true
}

resource "azurerm_resource_group" "ops" {
  name     = "rg-ops-cloudo"
  location = "westeurope"
}

module "cloudo" {
  source              = "../.."
  prefix              = "ops"
  env                 = "dev"
  location            = azurerm_resource_group.ops.location
  resource_group_name = azurerm_resource_group.ops.name

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

  schemas = file("${path.module}/schemas.json")
  runbooks_git = {
    repo_url = "https://github.com/example/runbooks.git"
    path     = "src/runbooks"
  }

  entra_app = {
    object_id      = "11111111-1111-1111-1111-111111111111"
    identifier_uri = "api://cloudo-trigger"
    tenant_id      = "22222222-2222-2222-2222-222222222222"
  }
  ops_alert_emails = ["oncall@example.com"]
}

output "trigger_url" {
  value = module.cloudo.trigger_url
}
