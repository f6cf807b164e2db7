-- One database per service: services never share a store.
CREATE DATABASE tweespoor_intake;
CREATE DATABASE tweespoor_trajectory;
CREATE DATABASE tweespoor_coaching;
CREATE DATABASE tweespoor_reporting;
