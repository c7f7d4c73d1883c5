// Federated
