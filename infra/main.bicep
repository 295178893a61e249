// dualbus on Azure: a Service Bus namespace with the area topics, subscriptions and rules, a Container Apps
// environment with Log Analytics, one Container App per producer and one per consumer (area x direction),
// each consumer scaled by KEDA on its own subscription, and the managed identities and role assignments
// they need.
//
// Everything that depends on the topology (topics, subscriptions, rules, control queue, apps, scale rule
// metadata) arrives in the parameters file that `dualbus infra render` writes: topology.parameters.json.
// Do not edit that file by hand; change shared/topology.py and re-render. See docs/deploy.md:
//
//   az deployment group create --resource-group <rg> --template-file infra/main.bicep \
//     --parameters @infra/topology.parameters.json --parameters namespaceName=<ns> ...

targetScope = 'resourceGroup'

@description('Region of every resource.')
param location string = resourceGroup().location

@description('Prefix of the environment, log workspace and identity names.')
param prefix string = 'dualbus'

@description('Service Bus namespace name: globally unique, 6-50 letters, digits and hyphens.')
@minLength(6)
@maxLength(50)
param namespaceName string

@description('Standard is enough for topics, sessions and duplicate detection; Premium isolates capacity.')
@allowed(['Standard', 'Premium'])
param serviceBusSku string = 'Standard'

@description('Refuse SAS keys so every client must use Entra ID (the apps use managed identities).')
param disableLocalAuth bool = true

@description('Producer image, e.g. myregistry.azurecr.io/dualbus-producer:0.1.0 (infra/docker/Dockerfile.producer).')
param producerImage string

@description('Consumer image, e.g. myregistry.azurecr.io/dualbus-consumer:0.1.0 (infra/docker/Dockerfile.consumer).')
param consumerImage string

@description('Name of an Azure Container Registry in this resource group to pull the images from; empty for a public registry.')
param registryName string = ''

@description('Storage account for the producers\' checkpoints (3-24 lower-case letters and digits).')
param storageAccountName string = take('dualbus${uniqueString(resourceGroup().id)}', 24)

@description('F&O environment URL, e.g. https://contoso.operations.dynamics.com')
param foUrl string
param foTenantId string = tenant().tenantId
param foClientId string
@description('F&O client secret; leave empty when foClientSecretKeyVaultUrl is set.')
@secure()
param foClientSecret string = ''
@description('Key Vault secret URI of the F&O client secret (preferred over foClientSecret).')
param foClientSecretKeyVaultUrl string = ''

@description('dualbus\'s own user as F&O records it (ModifiedBy): the F&O producer skips its changes, so none echoes back.')
param foOwnUsers array = []

@description('Dataverse environment URL, e.g. https://contoso.crm.dynamics.com')
param dataverseUrl string
param dataverseTenantId string = tenant().tenantId
param dataverseClientId string
@description('Dataverse client secret; leave empty when dataverseClientSecretKeyVaultUrl is set.')
@secure()
param dataverseClientSecret string = ''
@description('Key Vault secret URI of the Dataverse client secret (preferred over dataverseClientSecret).')
param dataverseClientSecretKeyVaultUrl string = ''

@description('dualbus\'s application user in Dataverse (user or object id): the Dataverse producer skips its changes.')
param dataverseOwnUsers array = []

// ---- Rendered from shared/topology.py into topology.parameters.json ----
@description('Area topics: name, area, ARM topic properties.')
param topics array
@description('Topic subscriptions (each topic\'s catch-all "unroutable" included): topicIndex, topic, name, ARM subscription properties, one SQL rule.')
param subscriptions array
@description('The control queue consumers peek for pause and resume: name, ARM queue properties.')
param controlQueue object
@description('Consumer apps, one per route: name, area, target, subscriptionIndex, unroutableSubscriptionIndex, args, maxReplicas, grace, scaleMetadata, unroutableScaleMetadata.')
param consumers array
@description('Producer apps, one per source system: name, origin, args.')
param producers array

// Built-in role definition IDs, from
// https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/integration (Service Bus) and
// https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/containers (AcrPull).
var roles = {
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39' // Azure Service Bus Data Sender
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0' // Azure Service Bus Data Receiver
  serviceBusDataOwner: '090c5cfd-751d-490a-894a-3ce6f1109419' // Azure Service Bus Data Owner
  acrPull: '7f951dda-4ed3-4680-a7ca-43fe172d538d' // AcrPull
}
var serviceBusHost = '${namespaceName}.servicebus.windows.net'
var stateDir = '/var/lib/dualbus'
var useRegistry = !empty(registryName)
// Identities that only the platform uses (scale rules, image pulls) are hidden from the containers, so that
// a consumer's code cannot borrow the scaler's Manage right:
// https://learn.microsoft.com/azure/container-apps/managed-identity#control-managed-identity-availability
var pullIdentitySettings = useRegistry ? [{ identity: pullIdentity.id, lifecycle: 'None' }] : []
var apis = {
  fo: {
    prefix: 'DUALBUS_FO__'
    url: foUrl
    tenantId: foTenantId
    clientId: foClientId
    keyVaultUrl: foClientSecretKeyVaultUrl
  }
  dataverse: {
    prefix: 'DUALBUS_DATAVERSE__'
    url: dataverseUrl
    tenantId: dataverseTenantId
    clientId: dataverseClientId
    keyVaultUrl: dataverseClientSecretKeyVaultUrl
  }
}

// ---- Service Bus: https://learn.microsoft.com/azure/templates/microsoft.servicebus/2021-11-01/namespaces ----

resource namespace 'Microsoft.ServiceBus/namespaces@2021-11-01' = {
  name: namespaceName
  location: location
  sku: {
    name: serviceBusSku
    tier: serviceBusSku
  }
  properties: {
    disableLocalAuth: disableLocalAuth
  }
}

resource topicResources 'Microsoft.ServiceBus/namespaces/topics@2021-11-01' = [
  for topic in topics: {
    parent: namespace
    name: topic.name
    properties: topic.properties
  }
]

resource subscriptionResources 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2021-11-01' = [
  for sub in subscriptions: {
    parent: topicResources[sub.topicIndex]
    name: sub.name
    properties: sub.properties
  }
]

// Creating a rule through ARM also removes the catch-all $Default rule the subscription was born with, so the
// subscription receives only what its SQL filter admits
// (https://github.com/hashicorp/terraform-provider-azurerm/issues/20718 describes the behaviour).
resource ruleResources 'Microsoft.ServiceBus/namespaces/topics/subscriptions/rules@2021-11-01' = [
  for (sub, i) in subscriptions: {
    parent: subscriptionResources[i]
    name: sub.rule.name
    properties: sub.rule.properties
  }
]

resource controlQueueResource 'Microsoft.ServiceBus/namespaces/queues@2021-11-01' = {
  parent: namespace
  name: controlQueue.name
  properties: controlQueue.properties
}

// ---- Identities: user-assigned, so role assignments exist before any app starts ----

resource producerIdentities 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = [
  for p in producers: {
    name: 'id-${p.name}'
    location: location
  }
]

resource consumerIdentities 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = [
  for c in consumers: {
    name: 'id-${c.name}'
    location: location
  }
]

// KEDA reads each subscription's message count through the management API, which needs the Manage right
// (Azure Service Bus Data Owner): https://github.com/kedacore/keda/issues/806 and
// https://github.com/microsoft/azure-container-apps/issues/1138. A separate identity holds it, so that the
// consumers themselves can only receive.
resource scalerIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${prefix}-scaler'
  location: location
}

resource pullIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = if (useRegistry) {
  name: 'id-${prefix}-pull'
  location: location
}

// ---- Role assignments: https://learn.microsoft.com/azure/service-bus-messaging/service-bus-managed-service-identity ----

resource producersSend 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (p, i) in producers: {
    name: guid(namespace.id, producerIdentities[i].id, roles.serviceBusDataSender)
    scope: namespace
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
      principalId: producerIdentities[i].properties.principalId
      principalType: 'ServicePrincipal'
    }
  }
]

// Each consumer may receive from its own subscription only.
resource consumersReceive 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (c, i) in consumers: {
    name: guid(subscriptionResources[c.subscriptionIndex].id, consumerIdentities[i].id, roles.serviceBusDataReceiver)
    scope: subscriptionResources[c.subscriptionIndex]
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataReceiver)
      principalId: consumerIdentities[i].properties.principalId
      principalType: 'ServicePrincipal'
    }
  }
]

// Consumers also dead-letter what their topic's catch-all subscription receives (docs/processing.md).
resource consumersReceiveUnroutable 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (c, i) in consumers: {
    name: guid(subscriptionResources[c.unroutableSubscriptionIndex].id, consumerIdentities[i].id, roles.serviceBusDataReceiver)
    scope: subscriptionResources[c.unroutableSubscriptionIndex]
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataReceiver)
      principalId: consumerIdentities[i].properties.principalId
      principalType: 'ServicePrincipal'
    }
  }
]

// Consumers peek the control queue for pause and resume; peeking needs the receive right.
resource consumersPeekControl 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (c, i) in consumers: {
    name: guid(controlQueueResource.id, consumerIdentities[i].id, roles.serviceBusDataReceiver)
    scope: controlQueueResource
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataReceiver)
      principalId: consumerIdentities[i].properties.principalId
      principalType: 'ServicePrincipal'
    }
  }
]

resource scalerReads 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (topic, i) in topics: {
    name: guid(topicResources[i].id, scalerIdentity.id, roles.serviceBusDataOwner)
    scope: topicResources[i]
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataOwner)
      principalId: scalerIdentity.properties.principalId
      principalType: 'ServicePrincipal'
    }
  }
]

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = if (useRegistry) {
  name: registryName
}

resource pullFromRegistry 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (useRegistry) {
  name: guid(resourceGroup().id, registryName, roles.acrPull)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.acrPull)
    principalId: useRegistry ? pullIdentity.properties.principalId : ''
    principalType: 'ServicePrincipal'
  }
}

// ---- Producer checkpoints: an Azure Files share per producer, so a restart resumes where it stopped ----

resource storage 'Microsoft.Storage/storageAccounts@2023-01-01' = {
  name: storageAccountName
  location: location
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    allowBlobPublicAccess: false
  }
}

resource fileService 'Microsoft.Storage/storageAccounts/fileServices@2023-01-01' = {
  parent: storage
  name: 'default'
}

resource stateShares 'Microsoft.Storage/storageAccounts/fileServices/shares@2023-01-01' = [
  for p in producers: {
    parent: fileService
    name: p.name
    properties: {
      shareQuota: 1
    }
  }
]

// ---- Container Apps environment: https://learn.microsoft.com/azure/container-apps/environment ----

resource logs 'Microsoft.OperationalInsights/workspaces@2022-10-01' = {
  name: '${prefix}-logs'
  location: location
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: 30
  }
}

resource appsEnvironment 'Microsoft.App/managedEnvironments@2024-03-01' = {
  name: '${prefix}-env'
  location: location
  properties: {
    appLogsConfiguration: {
      destination: 'log-analytics'
      logAnalyticsConfiguration: {
        customerId: logs.properties.customerId
        sharedKey: logs.listKeys().primarySharedKey
      }
    }
  }
}

resource stateStorages 'Microsoft.App/managedEnvironments/storages@2024-03-01' = [
  for (p, i) in producers: {
    parent: appsEnvironment
    name: p.name
    properties: {
      azureFile: {
        accountName: storage.name
        accountKey: storage.listKeys().keys[0].value
        shareName: stateShares[i].name
        accessMode: 'ReadWrite'
      }
    }
  }
]

// ---- Apps. Scale rules with a managed identity (the `identity` property instead of `auth`) need API version
// 2024-02-02-preview or later: https://learn.microsoft.com/azure/container-apps/managed-identity#scale-rules
// Scale rule schema: https://learn.microsoft.com/azure/container-apps/scale-app#custom ----

resource producerApps 'Microsoft.App/containerApps@2024-02-02-preview' = [
  for (p, i) in producers: {
    name: p.name
    location: location
    identity: {
      type: 'UserAssigned'
      userAssignedIdentities: union({ '${producerIdentities[i].id}': {} }, useRegistry ? { '${pullIdentity.id}': {} } : {})
    }
    properties: {
      managedEnvironmentId: appsEnvironment.id
      configuration: {
        activeRevisionsMode: 'Single'
        identitySettings: pullIdentitySettings
        secrets: [
          empty(apis[p.origin].keyVaultUrl) ? { name: 'client-secret', value: p.origin == 'fo' ? foClientSecret : dataverseClientSecret } : { name: 'client-secret', keyVaultUrl: apis[p.origin].keyVaultUrl, identity: producerIdentities[i].id }
        ]
        registries: useRegistry ? [{ server: registry.properties.loginServer, identity: pullIdentity.id }] : []
      }
      template: {
        containers: [
          {
            name: 'producer'
            image: producerImage
            args: p.args
            env: [
              { name: 'DUALBUS_SERVICEBUS__NAMESPACE', value: serviceBusHost }
              { name: 'DUALBUS_STATE_DIR', value: stateDir }
              // DefaultAzureCredential picks this user-assigned identity among the app's identities.
              { name: 'AZURE_CLIENT_ID', value: producerIdentities[i].properties.clientId }
              { name: '${apis[p.origin].prefix}URL', value: apis[p.origin].url }
              { name: '${apis[p.origin].prefix}TENANT_ID', value: apis[p.origin].tenantId }
              { name: '${apis[p.origin].prefix}CLIENT_ID', value: apis[p.origin].clientId }
              { name: '${apis[p.origin].prefix}CLIENT_SECRET', secretRef: 'client-secret' }
              // Loop prevention: changes these users made are dualbus's own writes (producers/settings.py).
              { name: 'DUALBUS_PRODUCER__OWN_USERS', value: string(p.origin == 'fo' ? foOwnUsers : dataverseOwnUsers) }
            ]
            resources: {
              cpu: json('0.5')
              memory: '1Gi'
            }
            volumeMounts: [
              { volumeName: 'state', mountPath: stateDir }
            ]
          }
        ]
        // Exactly one producer per source: two would publish every change twice.
        scale: {
          minReplicas: 1
          maxReplicas: 1
        }
        volumes: [
          {
            name: 'state'
            storageType: 'AzureFile'
            storageName: stateStorages[i].name
            // The image runs as uid/gid 10001, and SMB mounts belong to root unless told otherwise. nobrl keeps
            // SQLite's byte-range locks local, which SMB shares otherwise refuse; one replica is the only writer.
            mountOptions: 'uid=10001,gid=10001,dir_mode=0750,file_mode=0640,nobrl'
          }
        ]
      }
    }
    dependsOn: [producersSend, pullFromRegistry]
  }
]

resource consumerApps 'Microsoft.App/containerApps@2024-02-02-preview' = [
  for (c, i) in consumers: {
    name: c.name
    location: location
    identity: {
      type: 'UserAssigned'
      userAssignedIdentities: union({ '${consumerIdentities[i].id}': {}, '${scalerIdentity.id}': {} }, useRegistry ? { '${pullIdentity.id}': {} } : {})
    }
    properties: {
      managedEnvironmentId: appsEnvironment.id
      configuration: {
        activeRevisionsMode: 'Single'
        identitySettings: concat([{ identity: scalerIdentity.id, lifecycle: 'None' }], pullIdentitySettings)
        secrets: [
          empty(apis[c.target].keyVaultUrl) ? { name: 'client-secret', value: c.target == 'fo' ? foClientSecret : dataverseClientSecret } : { name: 'client-secret', keyVaultUrl: apis[c.target].keyVaultUrl, identity: consumerIdentities[i].id }
        ]
        registries: useRegistry ? [{ server: registry.properties.loginServer, identity: pullIdentity.id }] : []
      }
      template: {
        containers: [
          {
            name: 'consumer'
            image: consumerImage
            args: c.args
            env: [
              { name: 'DUALBUS_SERVICEBUS__NAMESPACE', value: serviceBusHost }
              { name: 'AZURE_CLIENT_ID', value: consumerIdentities[i].properties.clientId }
              { name: '${apis[c.target].prefix}URL', value: apis[c.target].url }
              { name: '${apis[c.target].prefix}TENANT_ID', value: apis[c.target].tenantId }
              { name: '${apis[c.target].prefix}CLIENT_ID', value: apis[c.target].clientId }
              { name: '${apis[c.target].prefix}CLIENT_SECRET', secretRef: 'client-secret' }
            ]
            resources: {
              cpu: json('0.25')
              memory: '0.5Gi'
            }
          }
        ]
        terminationGracePeriodSeconds: c.terminationGracePeriodSeconds
        scale: {
          minReplicas: 0
          maxReplicas: c.maxReplicas
          rules: [
            {
              name: 'subscription-backlog'
              custom: {
                type: 'azure-servicebus'
                // KEDA wants the namespace's short name; topicName, subscriptionName and messageCount are rendered.
                metadata: union(c.scaleMetadata, { namespace: namespace.name })
                identity: scalerIdentity.id
              }
            }
            {
              // Wakes the consumer for its topic's unroutable messages too, which it dead-letters.
              name: 'unroutable-backlog'
              custom: {
                type: 'azure-servicebus'
                metadata: union(c.unroutableScaleMetadata, { namespace: namespace.name })
                identity: scalerIdentity.id
              }
            }
          ]
        }
      }
    }
    dependsOn: [consumersReceive, consumersReceiveUnroutable, consumersPeekControl, scalerReads, pullFromRegistry]
  }
]

output serviceBusHost string = serviceBusHost
output environmentName string = appsEnvironment.name
output producerIdentityClientIds array = [for (p, i) in producers: producerIdentities[i].properties.clientId]
output consumerIdentityClientIds array = [for (c, i) in consumers: consumerIdentities[i].properties.clientId]
output scalerIdentityClientId string = scalerIdentity.properties.clientId
