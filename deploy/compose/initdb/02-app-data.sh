#!/bin/bash
# The app's tables and demo rows (orders, order_details, users, settings, restaurants, customers, ...)
# from fixtures/app/ (mounted at /fixtures/app), loaded by the MariaDB image on its first start.
# The image sources this file (it is not executable), so its docker_process_sql helper is at hand; the
# client charset is utf8mb4 so the UTF-8 names and emoji of the seed survive.
{
  echo "SET NAMES utf8mb4;"
  cat /fixtures/app/schema/mysql.sql /fixtures/app/seed/restrosaas.sql
} | docker_process_sql
