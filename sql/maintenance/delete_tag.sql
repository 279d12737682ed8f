{#- Delete one tag, and the data files only it still referenced. -#}
CALL lakehouse.sys.delete_tag(`table` => {{ table | sql_string }}, tag => {{ tag | sql_string }})
