"""A read-only SCIM 2.0 service provider (RFC 7643/7644) over the mirror: resources, filters
compiled to SQL, discovery documents, and the routes under `/scim/v2`."""
