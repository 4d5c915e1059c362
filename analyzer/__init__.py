"""The analyzer: entity sequence diagrams, partial-failure and SLO reports, over the store's
read path. It never writes."""
