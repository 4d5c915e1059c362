SELECT DISTINCT if(ServiceName = '', 'unknown_service', toString(ServiceName)) AS service_name
FROM @table
ORDER BY service_name
