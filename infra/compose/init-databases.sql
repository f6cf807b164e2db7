-- One role and one database per service: each service's role owns its own store and
-- nothing else, and may not connect to another service's database (PUBLIC loses CONNECT).
-- Development passwords, in plain sight like the rest of docker-compose.yml; the roles
-- may not create roles or databases, nor are they superusers.
CREATE ROLE tweespoor_intake LOGIN PASSWORD 'intake-dev' NOSUPERUSER NOCREATEDB NOCREATEROLE;
CREATE DATABASE tweespoor_intake OWNER tweespoor_intake;
REVOKE ALL ON DATABASE tweespoor_intake FROM PUBLIC;

CREATE ROLE tweespoor_trajectory LOGIN PASSWORD 'trajectory-dev' NOSUPERUSER NOCREATEDB NOCREATEROLE;
CREATE DATABASE tweespoor_trajectory OWNER tweespoor_trajectory;
REVOKE ALL ON DATABASE tweespoor_trajectory FROM PUBLIC;

CREATE ROLE tweespoor_coaching LOGIN PASSWORD 'coaching-dev' NOSUPERUSER NOCREATEDB NOCREATEROLE;
CREATE DATABASE tweespoor_coaching OWNER tweespoor_coaching;
REVOKE ALL ON DATABASE tweespoor_coaching FROM PUBLIC;

CREATE ROLE tweespoor_reporting LOGIN PASSWORD 'reporting-dev' NOSUPERUSER NOCREATEDB NOCREATEROLE;
CREATE DATABASE tweespoor_reporting OWNER tweespoor_reporting;
REVOKE ALL ON DATABASE tweespoor_reporting FROM PUBLIC;
