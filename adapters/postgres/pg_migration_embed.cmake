# Turns sql/NNNN_name.sql files into a C array of {version, name, sql} (cmake -P script).
# Inputs: -DSQL_DIR=<folder> -DOUTPUT=<generated .c file>.
# The SQL goes in as byte arrays so that no quote, backslash, trigraph or non-ASCII byte
# in a migration can change its meaning on the way into the binary.
cmake_minimum_required(VERSION 3.20)

if(NOT SQL_DIR OR NOT OUTPUT)
	message(FATAL_ERROR "pg_migration_embed: SQL_DIR and OUTPUT are required")
endif()

file(GLOB files "${SQL_DIR}/[0-9][0-9][0-9][0-9]_*.sql")
list(SORT files)
list(LENGTH files nfiles)
if(nfiles EQUAL 0)
	message(FATAL_ERROR "pg_migration_embed: no migration in ${SQL_DIR}")
endif()

set(arrays "")
set(entries "")
set(seen "")
foreach(f ${files})
	get_filename_component(stem "${f}" NAME_WE)
	if(NOT stem MATCHES "^([0-9][0-9][0-9][0-9])_([a-z0-9_]+)$")
		message(FATAL_ERROR "pg_migration_embed: ${f}: name must be NNNN_[a-z0-9_]+.sql")
	endif()
	set(digits "${CMAKE_MATCH_1}")
	set(name "${CMAKE_MATCH_2}")
	math(EXPR version "${digits}")
	if(version EQUAL 0)
		message(FATAL_ERROR "pg_migration_embed: ${f}: version 0000 is reserved")
	endif()
	if(version IN_LIST seen)
		message(FATAL_ERROR "pg_migration_embed: version ${digits} appears twice")
	endif()
	list(APPEND seen ${version})

	file(READ "${f}" hex HEX)
	if(hex MATCHES "^(..)*00")
		# A NUL would silently cut the migration short at run time.
		message(FATAL_ERROR "pg_migration_embed: ${f} contains a NUL byte")
	endif()
	string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
	string(REPEAT "0x..," 16 row) # CMake regexes have no {n}
	string(REGEX REPLACE "(${row})" "\\1\n\t" bytes "${bytes}")
	string(APPEND arrays "/* ${stem}.sql */\nstatic const char sql_${digits}[] = {\n\t${bytes}0x00};\n\n")
	string(APPEND entries "\t{${version}, \"${name}\", \"${stem}\", sql_${digits}},\n")
endforeach()

set(text "/* Generated from the sql/NNNN_name.sql files by adapters/postgres/pg_migration_embed.cmake. Do not edit. */
#include \"adapters/postgres/pg_migration_list.h\"

${arrays}const struct pg_migration pg_migration_list[] = {
${entries}};

const size_t pg_migration_list_count = ${nfiles};
")

# Rewrite only on change so that an unrelated re-run recompiles nothing.
if(EXISTS "${OUTPUT}")
	file(READ "${OUTPUT}" old)
	if(old STREQUAL text)
		return()
	endif()
endif()
file(WRITE "${OUTPUT}" "${text}")
