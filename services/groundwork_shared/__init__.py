"""What every Groundwork service needs: settings, logging, database, Redis,
health, errors and the gRPC server bootstrap. Services hold only their domain."""
