# Turns a text file into a C source defining
#   const char <symbol>[]; const unsigned long <symbol>_len;
# Run as: cmake -DIN=file -DOUT=file.c -DSYMBOL=name -P Embed.cmake
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(LENGTH "${hex}" n)
math(EXPR n "${n} / 2")
file(WRITE ${OUT} "/* generated from ${IN} */\n"
	"const char ${SYMBOL}[] = {${body} 0};\n"
	"const unsigned long ${SYMBOL}_len = ${n};\n")
