"""What every ERP API view shares: problem details, cursor pagination, money fields, schema hooks."""
